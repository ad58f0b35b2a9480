// Bench only (never shipped): `node --expose-gc --import` this, and SIGUSR2 runs a full GC, so
// the memory section reads the heap that is still live, not garbage no collection has needed yet.
process.on('SIGUSR2', () => { globalThis.gc?.() })
