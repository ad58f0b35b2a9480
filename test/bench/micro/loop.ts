/** Run `fn` for about a second after a warm-up; print ops/s and µs per op; return µs per op. */
export function bench (label: string, fn: () => void): number {
  for (let k = 0; k < 20_000; k++) fn() // warm up
  let n = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < 1000) {
    for (let k = 0; k < 1000; k++) fn()
    n += 1000
    elapsed = performance.now() - start
  }
  const ops = n / (elapsed / 1000)
  console.log(`${label.padEnd(44)} ${Math.round(ops).toLocaleString('en').padStart(12)} ops/s  ${(1e6 / ops).toFixed(2).padStart(8)} µs/op`)
  return 1e6 / ops
}
