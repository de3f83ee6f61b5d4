// A labelled DLP corpus, generated deterministically from a seed: realistic prompts and model
// responses carrying PII and secrets, and near-misses that must not match. The positives are
// built from each format's own rules (issuer prefixes and a computed Luhn digit, IBAN check
// digits by mod-97, NHS mod-11, GitHub's CRC32 checksum, real area codes and numbering plans), not
// from the detectors' regexes, so the corpus measures the detectors rather than echoing them.
//   npm run eval:dlp      prints precision and recall per type over it (test/dlp/eval.ts)
import { crc32 } from 'node:zlib';

export interface Label {
  type: string;
  start: number;
  end: number;
}

export interface Sample {
  id: string;
  kind: 'prompt' | 'response';
  text: string;
  labels: Label[];
}

/** mulberry32: small, fast, and the same sequence on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  readonly r: () => number;
  constructor(seed: number) {
    this.r = rng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)]!;
  }
  digits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String(this.int(0, 9));
    return s;
  }
  chars(alphabet: string, n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(0, alphabet.length - 1)];
    return s;
  }
}

const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
const ALNUM = UPPER + LOWER + DIGITS;
const B64 = `${ALNUM}+/`;
const B64URL = `${ALNUM}-_`;

// --- formats, from their rules -------------------------------------------------------------------

function luhnDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

function card(g: Gen, valid = true): string {
  const kind = g.int(0, 5);
  let prefix: string;
  let length: number;
  let groups: number[];
  if (kind === 0) [prefix, length, groups] = ['4', 16, [4, 4, 4, 4]];
  else if (kind === 1) [prefix, length, groups] = [String(g.int(51, 55)), 16, [4, 4, 4, 4]];
  else if (kind === 2) [prefix, length, groups] = [String(g.int(2221, 2720)), 16, [4, 4, 4, 4]];
  else if (kind === 3) [prefix, length, groups] = [g.pick(['34', '37']), 15, [4, 6, 5]];
  else if (kind === 4) [prefix, length, groups] = [g.pick(['6011', '65']), 16, [4, 4, 4, 4]];
  else [prefix, length, groups] = [String(g.int(3528, 3589)), 16, [4, 4, 4, 4]];
  const body = prefix + g.digits(length - 1 - prefix.length);
  let check = luhnDigit(body);
  if (!valid) check = String((Number(check) + g.int(1, 9)) % 10);
  const number = body + check;
  const sep = g.pick(['', ' ', '-']);
  if (sep === '') return number;
  const parts: string[] = [];
  let at = 0;
  for (const n of groups) {
    parts.push(number.slice(at, at + n));
    at += n;
  }
  return parts.join(sep);
}

const IBAN_SPECS: [country: string, bban: (g: Gen) => string][] = [
  ['DE', (g) => g.digits(18)],
  ['GB', (g) => g.chars(UPPER, 4) + g.digits(14)],
  ['FR', (g) => g.digits(10) + g.chars(UPPER + DIGITS, 11) + g.digits(2)],
  ['NL', (g) => g.chars(UPPER, 4) + g.digits(10)],
  ['ES', (g) => g.digits(20)],
  ['IT', (g) => g.chars(UPPER, 1) + g.digits(10) + g.chars(UPPER + DIGITS, 12)],
  ['CH', (g) => g.digits(5) + g.chars(UPPER + DIGITS, 12)],
  ['BE', (g) => g.digits(12)],
  ['NO', (g) => g.digits(11)],
];
function mod97(s: string): number {
  let rem = 0;
  for (const ch of s) {
    const v = ch >= 'A' && ch <= 'Z' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const d of v) rem = (rem * 10 + Number(d)) % 97;
  }
  return rem;
}
function iban(g: Gen, valid = true): string {
  const [country, bban] = g.pick(IBAN_SPECS);
  const b = bban(g);
  const good = 98 - mod97(`${b}${country}00`);
  let check = good;
  // Any other check number in 2..98 fails mod-97.
  if (!valid) while (check === good) check = g.int(2, 98);
  const compact = `${country}${String(check).padStart(2, '0')}${b}`;
  return g.r() < 0.5 ? compact : compact.replace(/(.{4})/g, '$1 ').trim();
}

function ssn(g: Gen, valid = true): string {
  let area: number;
  if (valid) {
    do area = g.int(1, 899);
    while (area === 666);
  } else area = g.pick([0, 666, g.int(900, 999)]);
  const group = valid ? g.int(1, 99) : g.pick([0, g.int(1, 99)]);
  const serial = valid ? g.int(1, 9999) : area === 0 || area >= 666 ? g.int(1, 9999) : 0;
  return `${String(area).padStart(3, '0')}-${String(group).padStart(2, '0')}-${String(serial).padStart(4, '0')}`;
}

function nhs(g: Gen, valid = true): string {
  for (;;) {
    const body = g.digits(9);
    let sum = 0;
    for (let k = 0; k < 9; k++) sum += Number(body[k]) * (10 - k);
    let check = 11 - (sum % 11);
    if (check === 11) check = 0;
    if (check === 10) continue;
    const digit = valid ? check : (check + g.int(1, 9)) % 10;
    const n = body + digit;
    const sep = g.pick(['', ' ', '-']);
    return sep ? `${n.slice(0, 3)}${sep}${n.slice(3, 6)}${sep}${n.slice(6)}` : n;
  }
}

/** Area codes in service (NANP), so the numbers are valid in their region. */
const US_AREAS = ['212', '415', '646', '312', '617', '206', '303', '512', '305', '404', '213', '702', '919', '503', '615'];
function phone(g: Gen): string {
  const kind = g.int(0, 6);
  const exchange = `${g.int(2, 9)}${g.int(0, 9)}${g.int(2, 9)}`;
  const line = g.digits(4);
  const area = g.pick(US_AREAS);
  switch (kind) {
    case 0:
      return `(${area}) ${exchange}-${line}`;
    case 1:
      return `${area}-${exchange}-${line}`;
    case 2:
      return `+1 ${area} ${exchange} ${line}`;
    case 3:
      return `+44 20 7${g.digits(3)} ${g.digits(4)}`;
    case 4:
      return `+44 7${g.int(7, 9)}${g.digits(2)} ${g.digits(6)}`;
    case 5:
      return `+33 6 ${g.digits(2)} ${g.digits(2)} ${g.digits(2)} ${g.digits(2)}`;
    default:
      return `+49 30 ${g.digits(8)}`;
  }
}

function ipv4(g: Gen): string {
  return g.pick([
    () => `10.${g.int(0, 255)}.${g.int(0, 255)}.${g.int(1, 254)}`,
    () => `192.168.${g.int(0, 255)}.${g.int(1, 254)}`,
    () => `${g.int(11, 223)}.${g.int(0, 255)}.${g.int(0, 255)}.${g.int(1, 254)}`,
  ])();
}
function ipv6(g: Gen): string {
  const h = () => g.int(0, 0xffff).toString(16);
  return g.pick([
    () => `2001:db8:${h()}:${h()}::${h()}`,
    () => `fe80::${h()}:${h()}:${h()}:${h()}`,
    () => `2a00:1450:${h()}:${h()}:${h()}:${h()}:${h()}:${h()}`,
  ])();
}

const FIRST = ['jane', 'omar', 'li', 'priya', 'lukas', 'maria', 'kwame', 'sofia', 'tom', 'aiko', 'noah', 'fatima'];
const LAST = ['doe', 'haddad', 'wei', 'patel', 'schmidt', 'garcia', 'mensah', 'rossi', 'baker', 'tanaka', 'smith', 'khan'];
const DOMAINS = ['example.com', 'acme.io', 'mail.example.co.uk', 'corp.internal.net', 'uni-berlin.de', 'gmail.com'];
function email(g: Gen): string {
  const local = g.pick([
    () => `${g.pick(FIRST)}.${g.pick(LAST)}`,
    () => `${g.pick(FIRST)}${g.int(1, 99)}`,
    () => `${g.pick(FIRST)}+${g.pick(['billing', 'news', 'dev'])}`,
    () => `${g.pick(FIRST)}_${g.pick(LAST)}`,
  ])();
  return `${local}@${g.pick(DOMAINS)}`;
}

const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
function date(g: Gen): string {
  const y = g.int(1940, 2005);
  const m = g.int(1, 12);
  const d = g.int(1, 28);
  const p = (n: number) => String(n).padStart(2, '0');
  return g.pick([
    () => `${y}-${p(m)}-${p(d)}`,
    () => `${p(d)}/${p(m)}/${y}`,
    () => `${p(m)}/${p(d)}/${y}`,
    () => `${d} ${MONTH_NAMES[m - 1]} ${y}`,
    () => `${MONTH_NAMES[m - 1]} ${d}, ${y}`,
    () => `${p(d)}.${p(m)}.${y}`,
  ])();
}

function awsAccessKey(g: Gen): string {
  return `${g.pick(['AKIA', 'ASIA'])}${g.chars(`${UPPER}234567`, 16)}`;
}
function awsSecretKey(g: Gen): string {
  let k: string;
  do k = g.chars(B64, 40);
  while (!/[A-Z]/.test(k) || !/[a-z]/.test(k));
  return k;
}
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
function b62(n: number): string {
  let s = '';
  let v = n;
  do {
    s = BASE62[v % 62] + s;
    v = Math.floor(v / 62);
  } while (v > 0);
  return s.padStart(6, '0');
}
function githubToken(g: Gen, valid = true): string {
  const random = g.chars(ALNUM, 30);
  let check = b62(crc32(random));
  if (!valid) check = `${check.slice(0, 5)}${check[5] === 'A' ? 'B' : 'A'}`;
  return `${g.pick(['ghp', 'gho', 'ghs', 'ghu'])}_${random}${check}`;
}
function slackToken(g: Gen): string {
  return g.pick([
    () => `xoxb-${g.digits(11)}-${g.digits(13)}-${g.chars(ALNUM, 24)}`,
    () => `xoxp-${g.digits(11)}-${g.digits(11)}-${g.digits(13)}-${g.chars('0123456789abcdef', 32)}`,
  ])();
}
function stripeKey(g: Gen): string {
  return `${g.pick(['sk', 'rk'])}_${g.pick(['live', 'test'])}_${g.chars(ALNUM, g.int(24, 99))}`;
}
function gcpKey(g: Gen): string {
  return `AIza${g.chars(`${ALNUM}-_`, 35)}`;
}
function pemBody(g: Gen, lines: number): string[] {
  return Array.from({ length: lines }, () => g.chars(B64, 64));
}
function privateKey(g: Gen): { text: string; key: string } {
  const label = g.pick(['RSA PRIVATE KEY', 'PRIVATE KEY', 'EC PRIVATE KEY', 'OPENSSH PRIVATE KEY', 'ENCRYPTED PRIVATE KEY']);
  const body = pemBody(g, g.int(3, 12));
  const style = g.int(0, 2);
  if (style === 0) {
    const key = [`-----BEGIN ${label}-----`, ...body, `-----END ${label}-----`].join('\n');
    return { text: key, key };
  }
  if (style === 1) {
    const key = [`-----BEGIN ${label}-----`, ...body, `-----END ${label}-----`].join('\\n');
    return { text: key, key };
  }
  const key = [`-----BEGIN ${label}-----`, ...body.map((l) => `    ${l}`), `    -----END ${label}-----`].join('\n');
  return { text: key, key };
}
function b64url(s: string): string {
  return Buffer.from(s).toString('base64url');
}
function jwt(g: Gen, withAlg = true): string {
  const header = withAlg ? { alg: g.pick(['HS256', 'RS256', 'ES256']), typ: 'JWT' } : { typ: 'JWT' };
  const payload = { sub: g.digits(8), name: `${g.pick(FIRST)} ${g.pick(LAST)}`, iat: g.int(1600000000, 1800000000) };
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${g.chars(B64URL, 43)}`;
}
function connectionString(g: Gen): string {
  const pw = g.chars(`${ALNUM}!*-_`, g.int(8, 20));
  const user = g.pick(['app', 'admin', 'root', 'svc_reports', 'etl']);
  return g.pick([
    () => `postgres://${user}:${pw}@db-${g.int(1, 9)}.internal:5432/app`,
    () => `mysql://${user}:${pw}@10.1.${g.int(0, 255)}.${g.int(1, 254)}:3306/shop`,
    () => `mongodb+srv://${user}:${pw}@cluster${g.int(0, 9)}.mongodb.net/prod?retryWrites=true`,
    () => `redis://:${pw}@cache.internal:6379/0`,
    () => `amqp://${user}:${pw}@rabbit.internal:5672/vhost`,
  ])();
}
function genericSecret(g: Gen): string {
  let v: string;
  do v = g.chars(`${ALNUM}-_`, g.int(20, 48));
  while (!/\d/.test(v) || !/[A-Za-z]/.test(v));
  return v;
}

// --- texts ---------------------------------------------------------------------------------------

/** Builds a text piece by piece, recording where each labelled entity lands. */
class Text {
  text = '';
  labels: Label[] = [];
  add(s: string): this {
    this.text += s;
    return this;
  }
  entity(type: string, value: string): this {
    this.labels.push({ type, start: this.text.length, end: this.text.length + value.length });
    this.text += value;
    return this;
  }
}

type Builder = (g: Gen, t: Text) => void;

const name = (g: Gen) => `${g.pick(FIRST)[0]!.toUpperCase()}${g.pick(FIRST).slice(1)} ${g.pick(LAST)[0]!.toUpperCase()}${g.pick(LAST).slice(1)}`;

/** Positives, each in a sentence the way people write them. */
const POSITIVES: Builder[] = [
  (g, t) => t.add(`Please refund ${name(g)}, card `).entity('CREDIT_CARD', card(g)).add(', for order #').add(g.digits(6)).add('.'),
  (g, t) => t.add('The customer paid with ').entity('CREDIT_CARD', card(g)).add(` (exp ${g.int(1, 12)}/${g.int(26, 31)}).`),
  (g, t) => t.add('Wire the deposit to IBAN ').entity('IBAN', iban(g)).add(` by Friday, reference INV-${g.digits(5)}.`),
  (g, t) => t.add('Her SSN is ').entity('US_SSN', ssn(g)).add(' and she lives in Ohio.'),
  (g, t) => t.add('Employee record: ').entity('US_SSN', ssn(g)).add(`, hired ${g.int(2001, 2023)}.`),
  (g, t) => t.add('SSN: ').entity('US_SSN', ssn(g).replace(/-/g, '')).add('\n'),
  (g, t) => t.add('Summarise the discharge letter for the patient with NHS number ').entity('UK_NHS', nhs(g)).add('.'),
  (g, t) => t.add('NHS no. ').entity('UK_NHS', nhs(g)).add(` — GP surgery in ${g.pick(['Leeds', 'Bristol', 'York'])}.`),
  (g, t) => t.add(`Contact ${name(g)} at `).entity('EMAIL', email(g)).add(' about the contract.'),
  (g, t) => t.add('From: ').entity('EMAIL', email(g)).add('\nTo: ').entity('EMAIL', email(g)).add('\nSubject: Q3 numbers'),
  (g, t) => t.add('You can call me on ').entity('PHONE', phone(g)).add(' after 5pm.'),
  (g, t) => t.add('Phone: ').entity('PHONE', phone(g)).add(`, ask for ${name(g)}.`),
  (g, t) => t.add('The server at ').entity('IP_ADDRESS', ipv4(g)).add(` keeps timing out on port ${g.int(1024, 65535)}.`),
  (g, t) => t.add('ssh admin@').entity('IP_ADDRESS', ipv4(g)).add(' -p 22'),
  (g, t) => t.add('Block traffic from [').entity('IP_ADDRESS', ipv6(g)).add(`]:${g.int(80, 9000)} please.`),
  (g, t) => t.add('Patient DOB: ').entity('DATE_OF_BIRTH', date(g)).add('.'),
  (g, t) => t.add(`${name(g)} was born on `).entity('DATE_OF_BIRTH', date(g)).add(' in Lisbon.'),
  (g, t) => t.add('{"name": "x", "dob": "').entity('DATE_OF_BIRTH', date(g).replace(/ /g, ' ')).add('"}'),
  (g, t) => t.add('Geburtsdatum: ').entity('DATE_OF_BIRTH', date(g)).add(' — bitte prüfen.'),
  (g, t) => t.add('Date of birth ').entity('DATE_OF_BIRTH', date(g)).add(', nationality Irish.'),
  (g, t) => t.add('export AWS_ACCESS_KEY_ID=').entity('AWS_ACCESS_KEY', awsAccessKey(g)).add('\n'),
  (g, t) =>
    t
      .add('[default]\naws_access_key_id = ')
      .entity('AWS_ACCESS_KEY', awsAccessKey(g))
      .add('\naws_secret_access_key = ')
      .entity('AWS_SECRET_KEY', awsSecretKey(g))
      .add('\n'),
  (g, t) => t.add('"SecretAccessKey": "').entity('AWS_SECRET_KEY', awsSecretKey(g)).add('",'),
  (g, t) => t.add('git clone https://').entity('GITHUB_TOKEN', githubToken(g)).add('@github.com/acme/infra.git'),
  (g, t) => t.add('GITHUB_TOKEN=').entity('GITHUB_TOKEN', githubToken(g)).add(' is in the CI env.'),
  (g, t) => t.add('slack:\n  token: ').entity('SLACK_TOKEN', slackToken(g)).add('\n'),
  (g, t) => t.add('stripe.api_key = "').entity('STRIPE_KEY', stripeKey(g)).add('"'),
  (g, t) => t.add('const maps = new Loader({ apiKey: "').entity('GCP_API_KEY', gcpKey(g)).add('" });'),
  (g, t) => {
    const k = privateKey(g);
    t.add('Why does this key fail to load?\n').entity('PRIVATE_KEY', k.key).add('\nThanks.');
  },
  (g, t) => t.add('Authorization: Bearer ').entity('JWT', jwt(g)).add('\n'),
  (g, t) => t.add('Decode this token for me: ').entity('JWT', jwt(g)),
  (g, t) => t.add('DATABASE_URL=').entity('CONNECTION_STRING', connectionString(g)).add('\n'),
  (g, t) => t.add('It fails connecting with "').entity('CONNECTION_STRING', connectionString(g)).add('" — why?'),
  (g, t) => t.add('client_secret: ').entity('GENERIC_SECRET', genericSecret(g)).add('\n'),
  (g, t) => t.add('api_key = "').entity('GENERIC_SECRET', genericSecret(g)).add('"'),
  // Other scripts and emoji before the entity (offsets are UTF-16 here, code points in the CLI).
  (g, t) => t.add('请把报告发给 😀 ').entity('EMAIL', email(g)).add(' 谢谢。'),
  (g, t) => t.add('出生日期：').entity('DATE_OF_BIRTH', `${g.int(1950, 2000)}年${g.int(1, 12)}月${g.int(1, 28)}日`).add('，请核对。'),
  (g, t) => t.add('生年月日 ').entity('DATE_OF_BIRTH', date(g)).add(' 🎂'),
  // Evasion: zero-width and bidi characters inside the secret are still part of it.
  (g, t) => {
    const k = awsAccessKey(g);
    const at = g.int(1, 18);
    t.add('key: ').entity('AWS_ACCESS_KEY', `${k.slice(0, at)}${g.pick(['\u200b', '\u200d', '\u2060', '\u202e'])}${k.slice(at)}`).add(' ok');
  },
  (g, t) => t.add('Card number: ').entity('CREDIT_CARD', card(g).replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d)))).add(' (full-width)'),
  (g, t) => t.add('{"user":{"email":"').entity('EMAIL', email(g)).add('","phone":"').entity('PHONE', phone(g)).add('"}}'),
  (g, t) => t.add(`curl -H "Authorization: Bearer `).entity('JWT', jwt(g)).add(`" https://api.example.com/v1/me`),
];

/** Near-misses: each must produce no finding. */
const NEGATIVES: Builder[] = [
  (g, t) => t.add(`Card ${card(g, false)} was declined (failed checksum).`),
  (g, t) => t.add(`Only the last digits are shown: **** **** **** ${g.digits(4)}.`),
  (g, t) => t.add(`IBAN ${iban(g, false)} has a typo in its check digits.`),
  (g, t) => t.add(`The test SSN ${ssn(g, false)} is not valid.`),
  (g, t) => t.add(`Order ${g.int(100000000, 999999999)} shipped yesterday.`),
  (g, t) => t.add(`NHS number ${nhs(g, false)} failed validation.`),
  (g, t) => t.add(`created_at ${1600000000 + g.int(0, 99999999)} (unix timestamp)`),
  (g, t) => t.add(`Upgrade to version ${g.int(1, 20)}.${g.int(0, 9)}.${g.int(0, 30)}.${g.int(0, 999)} before Monday.`),
  (g, t) => t.add(`image: registry.local/app:${g.int(1, 9)}.${g.int(0, 20)}.${g.int(0, 9)}.${g.int(0, 99)}`),
  (g, t) => t.add(`build ${g.int(1, 9)}.${g.int(0, 20)}.${g.int(0, 9)}.${g.int(100, 9999)} passed all checks`),
  (g, t) => t.add(`The OID 1.3.6.1.4.1.${g.int(1, 60000)}.${g.int(1, 9)} identifies the vendor MIB.`),
  (g, t) => t.add(`Use icon@2x.png and hero@${g.int(2, 3)}x.webp for retina screens.`),
  (g, t) => t.add(`Thanks @${g.pick(FIRST)} and @${g.pick(LAST)}-dev for the review!`),
  (g, t) => t.add(`npm install @types/node @babel/core@7.${g.int(0, 30)}.0 --save-dev`),
  (g, t) => t.add(`DATABASE_URL=postgres://app:\${DB_PASSWORD}@db:5432/app`),
  (g, t) => t.add('mysql://root:<password>@localhost:3306/shop'),
  (g, t) => t.add(`Tracking number ${g.digits(3)} ${g.digits(3)} ${g.digits(4)} — out for delivery.`),
  (g, t) => t.add(`Part no. ${g.digits(3)}-${g.digits(3)}-${g.digits(4)} is back in stock.`),
  (g, t) => t.add(`ISBN 978-${g.int(0, 1)}-${g.digits(3)}-${g.digits(5)}-${g.int(0, 9)}`),
  (g, t) => t.add(`request id ${uuid(g)} failed with 502`),
  (g, t) => t.add(`Fixed in commit ${g.chars('0123456789abcdef', 40)}.`),
  (g, t) => t.add('AWS docs use AKIAIOSFODNN7EXAMPLE and wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.'),
  (g, t) => t.add('aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'),
  (g, t) => t.add(`aws_secret_access_key = ${g.chars('0123456789abcdef', 40)}`),
  (g, t) => t.add(`GITHUB_TOKEN=ghp_${'x'.repeat(36)}`),
  (g, t) => t.add(`token ${githubToken(g, false)} (revoked, bad checksum)`),
  (g, t) => t.add('SLACK_BOT_TOKEN=xoxb-your-bot-token'),
  (g, t) => t.add('key=AIza<YOUR_KEY> in the maps URL'),
  (g, t) => t.add(`publishableKey: "pk_live_${g.chars(ALNUM, 24)}"`),
  (g, t) => t.add(`-----BEGIN PUBLIC KEY-----\n${pemBody(g, 4).join('\n')}\n-----END PUBLIC KEY-----`),
  (g, t) => t.add(`-----BEGIN CERTIFICATE-----\n${pemBody(g, 6).join('\n')}\n-----END CERTIFICATE-----`),
  (g, t) => t.add(`not a JWT: ${jwt(g, false)}`),
  (g, t) => t.add(`We meet on ${date(g)} to plan the launch.`),
  (g, t) => t.add(`Deploy the C4 model diagrams to S3, then run the T2 and M5 benchmarks in region ${g.pick(['us-east-1', 'eu-west-2'])}.`),
  (g, t) => t.add(`password: ${g.pick(['changeme', '********', 'your-password-here', '${DB_PASS}'])}`),
  (g, t) => t.add(`Invoice ${g.digits(10)} is due on ${g.int(1, 28)} March.`),
  (g, t) => t.add(`The ratio was ${g.int(1, 9)}.${g.digits(4)} at step ${g.int(100, 999)} of ${g.int(1000, 9999)}.`),
  (g, t) => t.add(`Population ${g.int(1, 9)},${g.digits(3)},${g.digits(3)},${g.digits(3)} in ${g.int(1990, 2024)}; price $${g.int(1, 9)},${g.digits(3)}.${g.digits(2)}.`),
  (g, t) => t.add(`Room ${g.int(100, 999)}, floor ${g.int(1, 30)}, open 9-5, ext. ${g.int(100, 999)}.`),
  (g, t) => t.add(`sha256:${g.chars('0123456789abcdef', 64)}`),
  (g, t) => t.add(`See RFC ${g.int(1000, 9999)} section ${g.int(1, 9)}.${g.int(1, 9)}.${g.int(1, 9)} and ticket #${g.digits(7)}.`),
  (g, t) => t.add(`const secret = process.env.${g.pick(['API_SECRET', 'JWT_SECRET', 'CLIENT_SECRET'])};`),
  (g, t) => t.add(`| ${g.digits(4)} | ${g.digits(4)} | ${g.digits(4)} | ${g.digits(4)} |`),
  (g, t) => t.add(`lat ${g.int(-89, 89)}.${g.digits(6)}, lon ${g.int(-179, 179)}.${g.digits(6)}`),
];

function uuid(g: Gen): string {
  const h = (n: number) => g.chars('0123456789abcdef', n);
  return `${h(8)}-${h(4)}-4${h(3)}-a${h(3)}-${h(12)}`;
}

const PROSE = [
  'Can you help me with something? ',
  'Here is the context from the ticket. ',
  'I pasted the relevant part below.\n',
  'Sure — here is a summary of what you sent. ',
  'Thanks, the deployment went fine otherwise. ',
  'Rewrite this more politely: ',
  '',
];

/** The corpus: `size` samples, a third carrying only near-misses. */
export function generateCorpus(seed = 13, size = 3000): Sample[] {
  const g = new Gen(seed);
  const out: Sample[] = [];
  for (let i = 0; i < size; i++) {
    const t = new Text();
    t.add(g.pick(PROSE));
    const parts = g.int(1, 3);
    for (let p = 0; p < parts; p++) {
      const negative = i % 3 === 0 || g.r() < 0.3;
      (negative ? g.pick(NEGATIVES) : g.pick(POSITIVES))(g, t);
      t.add(g.pick([' ', '\n', ' Also, ', '\n\n']));
    }
    t.add(g.pick(PROSE));
    out.push({ id: `s${i}`, kind: g.r() < 0.5 ? 'prompt' : 'response', text: t.text, labels: t.labels });
  }
  return out;
}

/** Every positive and near-miss builder once each: a quick set for tests that need coverage. */
export const BUILDER_COUNTS = { positives: POSITIVES.length, negatives: NEGATIVES.length };
