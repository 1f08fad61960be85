// A short "Browser on OS" label for the list of a user's sessions, parsed with
// bowser. Only names from bowser's own browser and OS tables can appear:
// bowser's catch-all rule echoes the first token of an unknown user agent, and
// a label must never carry text the client chose (nor the raw user agent).
import Bowser from 'bowser'

/** What an unparseable, empty or unrecognised user agent shows. */
export const UNKNOWN_DEVICE = 'Unknown device'
/** Longest label: names from the tables are far shorter; the cap keeps the promise if they grow. */
export const DEVICE_LABEL_MAX = 64
// Real user agents are a few hundred characters; parsing is bounded by
// reading no more than this (some of bowser's patterns backtrack on long input).
const UA_READ_MAX = 512

const BROWSERS = new Set<string>(Object.values(Bowser.BROWSER_MAP))
const SYSTEMS = new Set<string>(Object.values(Bowser.OS_MAP))

function known (names: Set<string>, name: string | undefined): string | undefined {
  return name !== undefined && names.has(name) ? name : undefined
}

/** "Chrome on Linux", "Safari on iOS", "Firefox", "Browser on Android", or "Unknown device". */
export function deviceLabel (userAgent: unknown): string {
  if (typeof userAgent !== 'string' || userAgent.trim() === '') return UNKNOWN_DEVICE
  const parsed = Bowser.parse(userAgent.slice(0, UA_READ_MAX))
  const browser = known(BROWSERS, parsed.browser.name)
  const os = known(SYSTEMS, parsed.os.name)
  let label: string
  if (browser !== undefined && os !== undefined) label = `${browser} on ${os}`
  else if (browser !== undefined) label = browser
  else if (os !== undefined) label = `Browser on ${os}`
  else return UNKNOWN_DEVICE
  return label.slice(0, DEVICE_LABEL_MAX)
}
