// A Map bounded in entries: reading an entry makes it the most recent, and
// setting one past the bound forgets the least recently used. Map keeps
// insertion order, so delete-then-set moves an entry to the end; an entry
// that is already the last one is not moved (a Map delete leaves a hole that
// the next rehash pays for, and the same session is often read many times in
// a row).

export class LruMap<K, V> {
  readonly max: number
  readonly #entries = new Map<K, V>()
  /**
   * The key last set or moved to the end. While it is in the map it is the
   * last entry: once deleted it comes back only through set(), which sets
   * this again, so a deleted key here is harmless.
   */
  #last: K | undefined

  constructor (max: number) {
    this.max = max
  }

  get size (): number {
    return this.#entries.size
  }

  get (key: K): V | undefined {
    const value = this.#entries.get(key)
    if (value !== undefined && key !== this.#last) {
      this.#entries.delete(key)
      this.#entries.set(key, value)
      this.#last = key
    }
    return value
  }

  /** The entry's value, without making it the most recent. */
  peek (key: K): V | undefined {
    return this.#entries.get(key)
  }

  /** Sets the entry; returns the entry it forgot to stay within `max`, if any. */
  set (key: K, value: V): [K, V] | undefined {
    this.#entries.delete(key)
    this.#entries.set(key, value)
    this.#last = key
    if (this.#entries.size <= this.max) return undefined
    const [oldest] = this.#entries
    this.#entries.delete(oldest[0])
    return oldest
  }

  delete (key: K): boolean {
    return this.#entries.delete(key)
  }

  /** Removes every entry the predicate selects. */
  deleteWhere (select: (value: V, key: K) => boolean): number {
    let removed = 0
    for (const [key, value] of this.#entries) {
      if (select(value, key)) {
        this.#entries.delete(key)
        removed++
      }
    }
    return removed
  }

  clear (): void {
    this.#entries.clear()
  }
}
