// The one protocol between a bench server (a child process) and the harness:
// the child listens on 127.0.0.1 port 0 and reports the port over IPC; on a
// `stats` message it answers with its RSS and its own counters. A child whose
// parent is gone exits on its own, so no server outlives an interrupted run.
export type ParentMessage = { type: 'stats' } | { type: 'reset' }

export type ChildMessage =
  | { type: 'ready', port: number }
  | { type: 'unavailable', reason: string }
  | { type: 'stats', rss: number, heapUsed: number, counters: Record<string, number>, monotonicUs: number, cpuUs: number }
  | { type: 'result', data: unknown }

export interface ServedApp {
  port: number
  /** Counters the harness reads with a `stats` message, e.g. refreshes seen by a route. */
  counters: Record<string, number>
}

function send (message: ChildMessage): void {
  /* c8 ignore next -- a server started by hand (no IPC) only logs its port */
  if (process.send === undefined) console.log(JSON.stringify(message))
  else process.send(message)
}

/** Starts the server, reports the port, answers `stats`; exits when the harness goes away. */
export async function serve (start: (counters: Record<string, number>) => Promise<number>): Promise<void> {
  const counters: Record<string, number> = {}
  process.on('disconnect', () => process.exit(0))
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'reset') {
      for (const key of Object.keys(counters)) counters[key] = 0
    }
    const { rss, heapUsed } = process.memoryUsage()
    // the clock --cpu-prof timestamps use: lets the harness cut start-up out of a profile
    const monotonicUs = Number(process.hrtime.bigint() / 1000n)
    // CPU time this process used (user + system): the work a load run cost it
    const { user, system } = process.cpuUsage()
    send({ type: 'stats', rss, heapUsed, counters: { ...counters }, monotonicUs, cpuUs: user + system })
  })
  const port = await start(counters)
  send({ type: 'ready', port })
}

/** Sends a one-shot measurement (start-up times) and exits once it is flushed. */
export async function report (data: unknown): Promise<never> {
  const message: ChildMessage = { type: 'result', data }
  /* c8 ignore next -- no IPC when started by hand */
  if (process.send === undefined) console.log(JSON.stringify(message))
  else await new Promise((resolve) => process.send?.(message, resolve))
  process.exit(0)
}

/** Reports that a case cannot run here (a suite plugin not written yet) and exits cleanly. */
export async function unavailable (reason: string): Promise<never> {
  const message: ChildMessage = { type: 'unavailable', reason }
  /* c8 ignore next -- same as above: no IPC when started by hand */
  if (process.send === undefined) console.log(JSON.stringify(message))
  // exit only once the message is flushed, or the harness would see a bare exit
  else await new Promise((resolve) => process.send?.(message, resolve))
  process.exit(0)
}
