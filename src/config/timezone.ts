/** Whether this Node.js knows the IANA time zone (its ICU data decides, so "Mars/Olympus" and typos fail). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** What to write instead of an unknown time zone. */
export const TIME_ZONE_HINT = 'use an IANA time zone name such as "UTC", "Europe/Berlin" or "America/New_York"';
