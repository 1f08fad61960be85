// A string-keyed map whose entries expire and whose size is bounded. It is
// insertion-ordered: every write drops expired entries from the front, and the
// oldest when the bound is reached, so memory stays bounded under load and no
// timer runs.
export class ExpiringMap<V> {
  readonly #entries = new Map<string, { value: V, until: number }>()
  readonly #max: number

  constructor (max: number) {
    this.#max = max
  }

  get size (): number {
    return this.#entries.size
  }

  /** The value while its expiry (epoch ms) is ahead, else undefined. */
  get (key: string): V | undefined {
    const entry = this.#entries.get(key)
    return entry !== undefined && entry.until > Date.now() ? entry.value : undefined
  }

  /** Stores `value` until `until` (epoch ms), as the newest entry. */
  set (key: string, value: V, until: number): void {
    this.#entries.delete(key)
    this.#entries.set(key, { value, until })
    const now = Date.now()
    for (const [k, entry] of this.#entries) {
      if (this.#entries.size <= this.#max && entry.until > now) break
      this.#entries.delete(k)
    }
  }

  delete (key: string): void {
    this.#entries.delete(key)
  }
}
