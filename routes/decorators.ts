// What the health and debug routes read of the plugins: their public
// decorators, each one optional, so the routes answer truthfully ("not
// configured") when a plugin is not registered on this instance.
import type { FastifyInstance } from 'fastify'

/** What the routes need of an instance, whatever its type provider. */
export type Decorated = Pick<FastifyInstance, 'hasDecorator' | 'getDecorator'>

/** The instance decorator `name`, or undefined when no plugin added it. */
export function optionalDecorator<T> (fastify: Decorated, name: string): T | undefined {
  return fastify.hasDecorator(name) ? fastify.getDecorator<T>(name) : undefined
}
