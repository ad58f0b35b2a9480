import type { FastifyReply, FastifyRequest } from 'fastify'

/** One step of the request path: it throws (or rejects) to refuse, or answers the request itself. */
export type Stage = (request: FastifyRequest, reply: FastifyReply) => void | Promise<unknown>

export type StagesHook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void

/**
 * A phase's stages as one Fastify hook, run in order. Synchronous stages run back to back; a
 * stage that returns a promise is awaited. A Fastify hook per stage would cost a promise and a
 * microtask hop each — ten per request on the hot path. A stage that answered the request ends
 * the phase (Fastify then skips the rest of the route), an error goes to the route's error handler.
 */
export function runStages (name: string, stages: readonly Stage[]): StagesHook {
  const hook: StagesHook = (request, reply, done) => {
    let i = 0
    const next = (): void => {
      while (i < stages.length) {
        if (reply.sent) return
        let result: void | Promise<unknown>
        try {
          result = stages[i++]!(request, reply)
        } catch (err) {
          done(err as Error)
          return
        }
        if (result !== undefined) {
          result.then(next, done)
          return
        }
      }
      if (!reply.sent) done()
    }
    next()
  }
  Object.defineProperty(hook, 'name', { value: name })
  return hook
}
