// One bounded GET of a JSON document from the provider, on Node's own fetch:
// bounded in time (the caller's AbortSignal, which also covers reading the
// body) and in size (read in chunks, cancelled past the limit), never
// following a redirect. Failures are a FetchFailure with a reason word, for
// the caller to turn into its own coded error.
import type { FetchReason } from './reasons.ts'

export class FetchFailure extends Error {
  readonly reason: FetchReason
  constructor (reason: FetchReason) {
    super(reason)
    this.reason = reason
  }
}

export interface BoundedGet {
  signal: AbortSignal
  /** the largest body accepted, in bytes */
  maxBytes: number
  headers?: Record<string, string>
}

/** The URL as it may be shown: no userinfo, query or fragment (they can carry credentials). */
export function displayUrl (url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return '(not a URL)'
  }
}

async function readBounded (res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'))
  if (declared > maxBytes) {
    await res.body?.cancel()
    throw new FetchFailure('too_large')
  }
  const chunks: Uint8Array[] = []
  let size = 0
  /* c8 ignore next -- a 200 answer always has a body stream in undici, if an empty one */
  if (res.body === null) return ''
  const reader = res.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel()
      throw new FetchFailure('too_large')
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** GET `url` and parse its 200 answer as JSON. Throws FetchFailure. */
export async function getJson (url: string, opts: BoundedGet): Promise<unknown> {
  let text: string
  try {
    const res = await fetch(url, { method: 'GET', redirect: 'manual', signal: opts.signal, headers: { accept: 'application/json', ...opts.headers } })
    if (res.status !== 200) {
      await res.body?.cancel()
      throw new FetchFailure('http_status')
    }
    text = await readBounded(res, opts.maxBytes)
  } catch (err) {
    if (err instanceof FetchFailure) throw err
    // The signal's abort surfaces as an AbortError/TimeoutError from fetch or from the body stream.
    throw new FetchFailure(opts.signal.aborted ? 'timeout' : 'unreachable')
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new FetchFailure('not_json')
  }
}
