/**
 * How deeply a request may nest. JSON.parse reads any depth, but much of what follows is recursive
 * (CloudTrail's record of the request, JSON.stringify when the account is saved, structuredClone):
 * a body nested a few thousand deep passes the codec, changes the account and then overflows the
 * stack, so a 500 follows a change that was made. Input is refused at decode instead, before
 * anything runs, with a bound far above what any AWS request shape needs (KMS, CloudTrail and Step
 * Functions bodies nest fewer than ten levels; S3's XML documents are held to 32 by their parser).
 *
 * AWS documents no nesting limit for these protocols, and what it answers beyond its own (unknown)
 * limit is unconfirmed; the simulator answers as AWS answers for a body it cannot read.
 */
export const MAX_NESTING = 64;

/**
 * Whether a JSON text nests objects and arrays deeper than `max`, read in one pass without parsing
 * (brackets inside strings do not count). A text that is not JSON at all is left to the parser.
 */
export function jsonNestsDeeper(text: string, max = MAX_NESTING): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}
