// Time zone names, checked without Intl where the answer is fixed. The first Intl.DateTimeFormat
// with a time zone (UTC included) maps ICU's zone and calendar data: ~6 MiB of file-backed RSS
// and ~2 MiB anonymous in every gate (README "Levers tried"). A gate whose zones are all UTC,
// the default, needs none of it: UTC has no offset and no transitions, so its wall clock is
// Date's getUTC* fields.

/** Names Intl reads as UTC, spelled as the config reference and most configs write them (Intl
 * also takes other aliases and any case; those still go through Intl and behave the same). */
const UTC_NAMES: ReadonlySet<string> = new Set(['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT']);

export function isUtc(timeZone: string): boolean {
  return UTC_NAMES.has(timeZone);
}

/** Whether Intl knows the zone (for the config's checks). */
export function isTimeZone(timeZone: string): boolean {
  if (isUtc(timeZone)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}
