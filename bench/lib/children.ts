// Starts each bench server as its own process (`node --import tsx <file>`),
// waits for the port it reports over IPC, and makes sure every child dies on
// every way out of the harness: normal end, exception, SIGINT or SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { ChildMessage, ParentMessage } from '../servers/ipc.ts'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

export interface ServerHandle {
  file: string
  port: number
  url: string
  pid: number
  stats: (reset?: boolean) => Promise<{ rss: number, heapUsed: number, counters: Record<string, number>, monotonicUs: number, cpuUs: number }>
  stop: () => Promise<void>
}

export type Started = { ok: true, server: ServerHandle } | { ok: false, reason: string }

const live = new Set<ChildProcess>()

function killAll (): void {
  for (const child of live) child.kill('SIGKILL')
  live.clear()
}

let guarded = false
/** Kills every child on the way out; an interrupted run exits 130 like a shell. */
export function guardChildren (): void {
  if (guarded) return
  guarded = true
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killAll()
      process.exit(signal === 'SIGINT' ? 130 : 143)
    })
  }
}

export interface StartOptions {
  env?: Record<string, string>
  /** directory for `node --cpu-prof`; the profile is written when the child exits */
  profileDir?: string
  readyTimeoutMs?: number
}

/** Runs a one-shot child (no server) and returns the first message it sends. */
export async function runChild (file: string, opts: StartOptions = {}): Promise<ChildMessage> {
  guardChildren()
  const child = spawn(process.execPath, ['--import', 'tsx', file], {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'production', ...opts.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  live.add(child)
  child.once('exit', () => live.delete(child))
  try {
    return await new Promise<ChildMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${file} sent nothing within ${opts.readyTimeoutMs ?? 30000} ms`)), opts.readyTimeoutMs ?? 30000)
      child.once('message', (message: ChildMessage) => { clearTimeout(timer); resolve(message) })
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${file} exited with code ${code} before it reported`)) })
    })
  } finally {
    child.kill('SIGKILL')
  }
}

export async function startServer (file: string, opts: StartOptions = {}): Promise<Started> {
  guardChildren()
  const args = [...(opts.profileDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir] : []), '--import', 'tsx', file]
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'production', ...opts.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  live.add(child)
  child.once('exit', () => live.delete(child))

  const first = await new Promise<ChildMessage | Error>((resolve) => {
    const timer = setTimeout(() => resolve(new Error(`${file} did not report a port within ${opts.readyTimeoutMs ?? 30000} ms`)), opts.readyTimeoutMs ?? 30000)
    child.once('message', (message: ChildMessage) => { clearTimeout(timer); resolve(message) })
    child.once('exit', (code) => { clearTimeout(timer); resolve(new Error(`${file} exited with code ${code} before it listened`)) })
  })
  if (first instanceof Error || first.type !== 'ready') {
    child.kill('SIGKILL')
    if (first instanceof Error) throw first
    return { ok: false, reason: first.type === 'unavailable' ? first.reason : `unexpected message ${first.type}` }
  }

  const port = first.port
  const server: ServerHandle = {
    file,
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    async stats (reset = false) {
      const reply = once(child, 'message') as Promise<[ChildMessage]>
      child.send({ type: reset ? 'reset' : 'stats' } satisfies ParentMessage)
      const [message] = await reply
      if (message.type !== 'stats') throw new Error(`${file}: expected stats, got ${message.type}`)
      return message
    },
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      // a disconnect lets the child exit normally, which is when --cpu-prof writes its file
      if (child.connected) child.disconnect()
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000)
      await exited
      clearTimeout(timer)
    }
  }
  return { ok: true, server }
}
