// Sessions already decoded, by the exact cookie value they came from, so that
// the next request carrying the same value skips base64, secretbox and
// JSON.parse. Safe because:
// - a hit needs the whole value, compared character by character with one
//   that decrypted and passed its MAC under our keys: any other byte anywhere
//   (ciphertext, MAC or nonce) is a miss. Entries are found by the value's
//   first SLOT characters (the secretbox MAC and the start of the ciphertext:
//   random for every seal), and a value that shares them but differs anywhere
//   else is a miss like any other. Nothing shorter than the whole value may
//   decide: a key made of the MAC alone would let a forged ciphertext that
//   carries a genuine MAC be served the genuine session.
// - it stores what the cookie said and nothing the server decided: the data
//   and the two times. Whether the session is still valid (idle and absolute
//   timeouts, clock skew, revocation) is the caller's check, on every request,
//   hit or miss.
// - every key it was filled with opened cookies under one keyring: flush()
//   when the keyring changes, so a retired key's cookies are decrypted (and
//   refused) again.
// - each caller gets its own deep copy: a write in one request never shows in
//   another, nor in the cache.
// - it is bounded by entries and by bytes (an estimate of V8's heap layout,
//   the cookie value included, checked against the measured heap in its
//   tests), least recently used out first.
//
// Why not a digest of the value as the key: SHA-256 of a 1.7 KB value costs
// several µs a request even with SHA-NI (7 % of a 6 KB chunked read), and a
// Map keyed by the whole value is slower still (V8 hashes long strings one
// character at a time, about twice SHA-NI's cost, measured). Hashing 32
// characters and comparing the rest with memcmp costs a fraction of either,
// and equality, unlike a digest, has no collisions to argue about. The price
// is memory: the value is kept beside what it decoded to (and counted against
// maxBytes). A heap dump of the process shows the cookies it holds, as it
// already shows the decoded sessions, tokens included.
import { Type, type Static } from '@sinclair/typebox'
import { validateOptions } from '../options.ts'
import { putField as put } from './payload.ts'

export const DECODED_CACHE_DEFAULTS = { maxEntries: 10_000, maxBytes: 32 * 1024 * 1024 } as const

export const decodedCacheOptionsSchema = Type.Object({
  /** Most sessions kept. @default 10000 */
  maxEntries: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    description: 'Entries: the most decoded sessions kept; the least recently used goes first.',
    default: DECODED_CACHE_DEFAULTS.maxEntries
  })),
  /** Most bytes kept, as estimated per entry (see `entryBytes`). @default 33554432 (32 MiB) */
  maxBytes: Type.Optional(Type.Integer({
    minimum: 1024,
    maximum: 2 ** 40,
    description: 'Bytes of heap the kept sessions (and the cookie values they are found by) may take, as estimated per entry from V8\'s layout (32 MiB by default).',
    default: DECODED_CACHE_DEFAULTS.maxBytes
  }))
}, { additionalProperties: false })

export type DecodedCacheOptions = Static<typeof decodedCacheOptionsSchema>

/** What a cookie decoded to: its fields and the two times the caller re-checks on every request. */
export interface DecodedSession {
  /** the session's fields: JSON values only, as JSON.parse makes them */
  data: Record<string, unknown>
  /** seconds: when the cookie was issued (idle timeout, rolling re-issue) */
  issuedAt: number
  /** seconds: when the session was created (absolute timeout) */
  createdAt: number
}

/**
 * A cookie value, as the cache looks it up (every character counts), the slot
 * it is found by, and, for a value joined from chunks, the chunks.
 */
export interface DecodedCacheKey { readonly value: string, readonly slot: string, readonly parts?: readonly string[] }

export interface DecodedCacheStats {
  entries: number
  /** estimated heap bytes of all entries */
  bytes: number
  hits: number
  misses: number
  evictions: number
  /** set() calls that stored nothing: not JSON data, too deep, or larger than maxBytes alone */
  refused: number
  flushes: number
}

export interface DecodedCache {
  /**
   * The key for exactly this cookie value (every byte counts). `parts`, when
   * given, are the strings the value was joined from (its chunks), in order:
   * a hit compares them one by one with the kept value, so the joined rope is
   * never flattened (a copy of the whole value per request).
   */
  key (cookieValue: string, parts?: readonly string[]): DecodedCacheKey
  /** A deep copy of the session stored under this key, or undefined; a hit makes it the most recently used. */
  get (key: DecodedCacheKey): DecodedSession | undefined
  /**
   * Keeps a deep copy of a session that the value behind `key` decodes to.
   * Returns false, storing nothing, for data a JSON round trip would change
   * (undefined, NaN, -0, a Date, a class instance, a function), nested deeper
   * than 64 levels, or larger alone than maxBytes. `owned`: the value is a
   * string this process made (a cookie it just sealed), not a slice of a
   * request's Cookie header, so it is kept as it is rather than copied.
   */
  set (key: DecodedCacheKey, session: DecodedSession, owned?: boolean): boolean
  delete (key: DecodedCacheKey): boolean
  /** Forgets every session: call it when the keyring changes. */
  flush (): void
  stats (): DecodedCacheStats
}

// Heap sizes on 64-bit V8 without pointer compression (Node's default build):
// every field a pointer of 8 bytes, small integers stored in the field. Field
// names are counted with each entry, although sessions of one shape share
// them (measured: an overcount of ~15 % for a token-set session, 2× for ten
// small-integer fields), while the hidden classes V8 builds per shape are
// not: a session whose field names no other session has takes ~55 B per such
// field more than estimated (measured), and the entry bound still caps it.
const WORD = 8
const STRING_HEADER = 16 // map, hash, length
const HEAP_NUMBER = 16 // map + float64, for a number that is not a small integer
const OBJECT_HEADER = 3 * WORD // map, properties, elements
const IN_OBJECT_SLOTS = 4 // what V8 reserves inside an object made by `{}`
const PROPERTY_ARRAY_HEADER = 2 * WORD
const PROPERTY_SLACK = 3 // V8 grows the out-of-object properties by 3 at a time
const DICTIONARY_PROPERTIES = 1020 // past this many fields V8 keeps a hash table (kMaxNumberOfDescriptors)
const DICTIONARY_ENTRY = 6 * WORD // key, value, details, at a load factor of ½
const ARRAY_HEADER = 4 * WORD // map, properties, elements, length
const FIXED_ARRAY_HEADER = 2 * WORD
/** Characters of the value an entry is found by: 24 bytes of MAC and ciphertext. */
export const SLOT = 32
/**
 * The slot string (a slice of the kept value, or a copy of a shorter one), the
 * entry record and its place in the Map's hash table; the value itself is
 * counted apart (valueBytes).
 */
export const ENTRY_OVERHEAD = (STRING_HEADER + 16) + (OBJECT_HEADER + 5 * WORD) + 6 * WORD

const MAX_DEPTH = 64
const SMI_MIN = -(2 ** 31)
const SMI_MAX = 2 ** 31 - 1
// A string with a character above U+00FF takes two bytes per character.
const TWO_BYTE = /[\u0100-\uffff]/

const align = (n: number): number => (n + WORD - 1) & ~(WORD - 1)
const stringBytes = (s: string): number => STRING_HEADER + align(TWO_BYTE.test(s) ? 2 * s.length : s.length)

function objectBytes (fields: number): number {
  if (fields > DICTIONARY_PROPERTIES) return OBJECT_HEADER + WORD * IN_OBJECT_SLOTS + PROPERTY_ARRAY_HEADER + DICTIONARY_ENTRY * fields
  const outside = fields - IN_OBJECT_SLOTS
  return OBJECT_HEADER + WORD * IN_OBJECT_SLOTS + (outside > 0 ? PROPERTY_ARRAY_HEADER + WORD * (outside + PROPERTY_SLACK) : 0)
}

const REFUSED = Symbol('refused')

/** Copies a JSON value, adding its estimated heap bytes to size.bytes; REFUSED for anything JSON would change. */
function intake (value: unknown, depth: number, size: { bytes: number }): unknown {
  switch (typeof value) {
    case 'string':
      size.bytes += stringBytes(value)
      return value
    case 'boolean':
      return value
    case 'number':
      // JSON writes NaN and ±Infinity as null and -0 as 0
      if (!Number.isFinite(value) || Object.is(value, -0)) return REFUSED
      if (!Number.isInteger(value) || value < SMI_MIN || value > SMI_MAX) size.bytes += HEAP_NUMBER
      return value
    case 'object':
      break
    default:
      // undefined, a function, a symbol or a bigint: JSON drops or refuses them
      return REFUSED
  }
  if (value === null) return null
  if (depth >= MAX_DEPTH) return REFUSED
  if (Array.isArray(value)) {
    const out = new Array(value.length)
    for (let i = 0; i < value.length; i++) {
      // a hole reads as undefined and is refused (JSON writes null)
      const item = intake(value[i], depth + 1, size)
      if (item === REFUSED) return REFUSED
      out[i] = item
    }
    size.bytes += ARRAY_HEADER + FIXED_ARRAY_HEADER + WORD * value.length
    return out
  }
  const proto = Object.getPrototypeOf(value)
  // a Date, Map, Buffer or class instance is not what decoding gives back
  if ((proto !== Object.prototype && proto !== null) || typeof (value as { toJSON?: unknown }).toJSON === 'function') return REFUSED
  const source = value as Record<string, unknown>
  const keys = Object.keys(source)
  const out: Record<string, unknown> = {}
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    const item = intake(source[key], depth + 1, size)
    if (item === REFUSED) return REFUSED
    put(out, key, item)
    // keys are counted too: JSON.parse shares them between sessions of one
    // shape, but a key only one session has is kept alive by it
    size.bytes += stringBytes(key)
  }
  size.bytes += objectBytes(keys.length)
  return out
}

/** Copies what intake() accepted: nothing to check any more. */
function copy (value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) {
    const out = new Array(value.length)
    for (let i = 0; i < value.length; i++) out[i] = copy(value[i])
    return out
  }
  const out: Record<string, unknown> = {}
  // for-in, not Object.keys: three times faster on these fast-mode objects
  // (V8's enum cache). It also walks the prototype chain, so get() uses it
  // only while Object.prototype has no enumerable property (see below).
  for (const key in value) put(out, key, copy((value as Record<string, unknown>)[key]))
  return out
}

function copyOwn (value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) return value.map(copyOwn)
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) put(out, key, copyOwn((value as Record<string, unknown>)[key]))
  return out
}

const EMPTY = {}
/**
 * False once something has made a property of Object.prototype enumerable
 * (prototype pollution): for-in would then copy it into every session as an
 * own field, which a fresh decode does not do.
 */
function prototypeClean (): boolean {
  for (const _ in EMPTY) return false // eslint-disable-line no-unreachable-loop
  return true
}

/** The estimated heap bytes one entry for this data, found by this cookie value, takes; undefined when set() would refuse it. */
export function entryBytes (data: Record<string, unknown>, cookieValue: string): number | undefined {
  const size = { bytes: 0 }
  return intake(data, 0, size) === REFUSED ? undefined : size.bytes + ENTRY_OVERHEAD + valueBytes(cookieValue)
}

/** Heap bytes of the cookie value as the cache keeps it: a flat copy. */
export function valueBytes (value: string): number {
  return stringBytes(value)
}

/**
 * A flat copy of the value: the one the request holds is usually a slice of
 * its Cookie header, and keeping it would keep the whole header alive.
 */
function ownCopy (value: string): string {
  return TWO_BYTE.test(value) ? Buffer.from(value, 'utf16le').toString('utf16le') : Buffer.from(value, 'latin1').toString('latin1')
}

const slotOf = (value: string): string => value.length <= SLOT ? value : value.slice(0, SLOT)

/**
 * The kept value equals the key's, character for character. Strings compare
 * with memcmp (lengths first) once flat; a joined rope is compared part by
 * part against slices of the kept value (a slice shares its characters), as
 * flattening it would copy the whole value.
 */
function sameValue (kept: string, { value, parts }: DecodedCacheKey): boolean {
  if (parts === undefined) return kept === value
  if (kept.length !== value.length) return false
  let at = 0
  for (const part of parts) {
    const end = at + part.length
    if (kept.slice(at, end) !== part) return false
    at = end
  }
  return at === kept.length
}

interface Entry { value: string, data: Record<string, unknown>, issuedAt: number, createdAt: number, bytes: number }

export function createDecodedCache (options: DecodedCacheOptions = {}): DecodedCache {
  const opts = validateOptions(decodedCacheOptionsSchema, options, 'decodedCache')
  const maxEntries = opts.maxEntries ?? DECODED_CACHE_DEFAULTS.maxEntries
  const maxBytes = opts.maxBytes ?? DECODED_CACHE_DEFAULTS.maxBytes
  // By slot. A Map iterates in insertion order: deleting and re-adding on
  // every hit keeps the least recently used entry first.
  const entries = new Map<string, Entry>()
  const stats: DecodedCacheStats = { entries: 0, bytes: 0, hits: 0, misses: 0, evictions: 0, refused: 0, flushes: 0 }

  function remove (slot: string, entry: Entry): void {
    entries.delete(slot)
    stats.bytes -= entry.bytes
  }

  return {
    key (cookieValue, parts) {
      // With parts, the parts decide (the value is their join): a hit needs
      // each equal to its stretch of the kept value, together all of it.
      if (parts === undefined || parts.length < 2) return { value: cookieValue, slot: slotOf(cookieValue) }
      return { value: cookieValue, slot: slotOf(parts[0].length >= SLOT ? parts[0] : cookieValue), parts }
    },
    get (key) {
      const entry = entries.get(key.slot)
      // Every character, not the slot alone.
      if (entry === undefined || !sameValue(entry.value, key)) {
        stats.misses++
        return undefined
      }
      stats.hits++
      entries.delete(key.slot)
      entries.set(key.slot, entry)
      const data = (prototypeClean() ? copy(entry.data) : copyOwn(entry.data)) as Record<string, unknown>
      return { data, issuedAt: entry.issuedAt, createdAt: entry.createdAt }
    },
    set (key, session, owned = false) {
      const value = owned ? key.value : ownCopy(key.value)
      const slot = slotOf(value)
      // The same value again, or (never for sealed values) another with the
      // same first characters: either way the entry is replaced.
      const old = entries.get(slot)
      if (old !== undefined) remove(slot, old)
      const size = { bytes: ENTRY_OVERHEAD + valueBytes(value) }
      const data = intake(session.data, 0, size)
      if (data === REFUSED || size.bytes > maxBytes) {
        stats.refused++
        return false
      }
      entries.set(slot, { value, data: data as Record<string, unknown>, issuedAt: session.issuedAt, createdAt: session.createdAt, bytes: size.bytes })
      stats.bytes += size.bytes
      // the newest entry is last, so it is never the one evicted here
      for (const [oldest, entry] of entries) {
        if (entries.size <= maxEntries && stats.bytes <= maxBytes) break
        remove(oldest, entry)
        stats.evictions++
      }
      return true
    },
    delete (key) {
      const entry = entries.get(key.slot)
      if (entry === undefined || !sameValue(entry.value, key)) return false
      remove(key.slot, entry)
      return true
    },
    flush () {
      entries.clear()
      stats.bytes = 0
      stats.flushes++
    },
    stats () {
      return { ...stats, entries: entries.size }
    }
  }
}
