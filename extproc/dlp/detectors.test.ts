// The "What counts" rules, one row each: the text, and exactly the findings (type and
// matched raw text) the default policy must report in it.
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compileDlp } from './compile.ts';
import { base62 } from './validators.ts';

const scanner = compileDlp({ name: 'default' });
const found = (text: string) => scanner.scan(text).map((f) => [f.type, text.slice(f.start, f.end)]);

/** A classic GitHub token with a correct checksum. */
function ghToken(prefix: string, random30: string): string {
  return `${prefix}_${random30}${base62(crc32(random30), 6)}`;
}
const GH = ghToken('ghp', 'Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy');
const GH_BAD = `${GH.slice(0, -1)}${GH.endsWith('A') ? 'B' : 'A'}`;
const PEM_BODY = 'MIIEowIBAAKCAQEAx4Ka0bPq3sTt9yJ8mC2nR5vW1qL6oZ0dF3hG7kM4pN8rS2uV9wXy';

type Row = [name: string, text: string, expected: [string, string][]];

const rows: Row[] = [
  // cards
  ['visa plain', 'card 4111111111111111 ok', [['CREDIT_CARD', '4111111111111111']]],
  ['visa spaced', 'pay with 4111 1111 1111 1111.', [['CREDIT_CARD', '4111 1111 1111 1111']]],
  ['mastercard dashed', '5555-5555-5555-4444', [['CREDIT_CARD', '5555-5555-5555-4444']]],
  ['mastercard 2-series', 'new range 2223 0000 4840 0011', [['CREDIT_CARD', '2223 0000 4840 0011']]],
  ['amex 4-6-5', 'amex 3782 822463 10005', [['CREDIT_CARD', '3782 822463 10005']]],
  ['no context needed', '4012888888881881', [['CREDIT_CARD', '4012888888881881']]],
  ['failed Luhn', 'card 4111 1111 1111 1112', []],
  ['no issuer', 'number 1234 5678 9012 3452', []],
  ['masked card', 'card **** **** **** 1111 and XXXX-XXXX-XXXX-1111', []],
  ['mixed separators', '4111 1111-1111 1111', []],
  // IBAN
  ['iban compact', 'IBAN DE89370400440532013000.', [['IBAN', 'DE89370400440532013000']]],
  ['iban grouped', 'to GB82 WEST 1234 5698 7654 32 today', [['IBAN', 'GB82 WEST 1234 5698 7654 32']]],
  ['iban bad mod-97', 'IBAN DE89370400440532013001', []],
  ['iban wrong length', 'IBAN DE8937040044053201300', []],
  ['card-like run inside an IBAN', 'NO93 8601 1117 947', [['IBAN', 'NO93 8601 1117 947']]],
  // US SSN
  ['ssn dashed, no context', 'id 536-22-1234 on file', [['US_SSN', '536-22-1234']]],
  ['ssn area 000', '000-22-1234', []],
  ['ssn area 666', '666-22-1234', []],
  ['ssn area 9xx', '912-22-1234', []],
  ['ssn group 00', '536-00-1234', []],
  ['ssn serial 0000', '536-22-0000', []],
  ['ssn undashed with context', 'SSN: 536221234', [['US_SSN', '536221234']]],
  ['ssn undashed without context', 'order 536221234 shipped', []],
  // UK NHS
  ['nhs with context', 'NHS number 943 476 5919', [['UK_NHS', '943 476 5919']]],
  ['nhs clinical context', 'patient 9434765919 admitted', [['UK_NHS', '9434765919']]],
  ['nhs without context', 'reference 943-476-5919x', []],
  ['nhs bad mod-11', 'NHS number 943 476 5918', []],
  ['mod-11-valid unix timestamp', 'patient record timestamp 1700000006', []],
  // dates of birth
  ['DOB key', 'DOB: 1990-01-02', [['DATE_OF_BIRTH', '1990-01-02']]],
  ['born on', 'she was born on 12 March 1985 in Leeds', [['DATE_OF_BIRTH', '12 March 1985']]],
  ['date of birth', 'Date of birth 03/04/1970', [['DATE_OF_BIRTH', '03/04/1970']]],
  ['dob json key', '{"dob": "1971-07-30"}', [['DATE_OF_BIRTH', '1971-07-30']]],
  ['Geburtsdatum', 'Geburtsdatum: 14.02.1988', [['DATE_OF_BIRTH', '14.02.1988']]],
  ['date de naissance', 'date de naissance : 05/06/1979', [['DATE_OF_BIRTH', '05/06/1979']]],
  ['fecha de nacimiento', 'fecha de nacimiento 1982-11-23', [['DATE_OF_BIRTH', '1982-11-23']]],
  ['出生日期', '出生日期：1990年1月2日', [['DATE_OF_BIRTH', '1990年1月2日']]],
  ['生年月日', '生年月日 1985-04-01', [['DATE_OF_BIRTH', '1985-04-01']]],
  // The date regex's lookarounds are ASCII; check() applies their Unicode part, as the regex's
  // Unicode lookarounds did: no date runs on into a number, and none starts inside a word (a
  // CJK keyword glued to the date included, as before).
  ['date glued to an Arabic-Indic digit', 'DOB: 1990-01-02٣', []],
  ['date glued to a CJK word', '生年月日1985-04-01', []],
  ['date after CJK punctuation', '生年月日：1985-04-01', [['DATE_OF_BIRTH', '1985-04-01']]],
  ['a date without birth context', 'the meeting is on 1990-01-02', []],
  // IP addresses
  ['ipv4 with port', 'connect to 10.0.0.1:8080', [['IP_ADDRESS', '10.0.0.1']]],
  ['ipv4 CIDR', 'allow 192.168.1.0/24', [['IP_ADDRESS', '192.168.1.0']]],
  ['ipv6 bracketed with port', 'http://[2001:db8::8a2e:370:7334]:443/', [['IP_ADDRESS', '2001:db8::8a2e:370:7334']]],
  ['version string', 'upgrade to version 10.2.3.4 now', []],
  ['v-prefixed version', 'release v10.2.3.4', []],
  ['image tag', 'image: nginx:1.25.3.1', []],
  ['build number', 'build 4.18.2.1 passed', []],
  ['OID', 'oid 1.3.6.1.4.1.311', []],
  ['octet over 255', '300.1.1.1', []],
  // e-mail
  ['email', 'write to jane.doe+tag@mail.example.co.uk.', [['EMAIL', 'jane.doe+tag@mail.example.co.uk']]],
  ['retina asset', 'use icon@2x.png and logo@3x.webp', []],
  ['mention', 'thanks @alice and @bob-smith', []],
  ['npm scope', 'npm i @types/node @babel/core@7.24.0', []],
  ['DSN password@host', 'postgres://app:pw@db.internal/x', [['CONNECTION_STRING', 'postgres://app:pw@db.internal/x']]],
  // phones
  ['e164', 'call +44 20 7946 0958', [['PHONE', '+44 20 7946 0958']]],
  ['us national', 'phone (415) 555-2671', [['PHONE', '(415) 555-2671']]],
  ['german international', 'Tel. +49 30 901820', [['PHONE', '+49 30 901820']]],
  ['invalid number', 'call 555-0100', []],
  ['order number', 'order 4155552671 shipped', []],
  ['part number', 'part no. 415-555-2671', []],
  ['tracking number', 'tracking 415 555 2671', []],
  ['ISBN', 'ISBN 978-3-16-148410-0', []],
  // secrets
  ['aws access key', 'key AKIAZ3MSJV6WWQXWFT2K', [['AWS_ACCESS_KEY', 'AKIAZ3MSJV6WWQXWFT2K']]],
  ['aws example access key', 'AKIAIOSFODNN7EXAMPLE', []],
  [
    'aws secret key as a setting',
    'aws_secret_access_key = Tq3s8fJ1kP0Lm9Nb2Vc7Xz5Qw4Er6Ty8Ui0Op1As',
    [['AWS_SECRET_KEY', 'Tq3s8fJ1kP0Lm9Nb2Vc7Xz5Qw4Er6Ty8Ui0Op1As']],
  ],
  ['aws example secret key', 'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', []],
  ['git SHA as secret key', 'aws_secret_access_key = 3f786850e387550fdab836ed7e6dc881de23001b', []],
  ['40 chars without the setting', 'value Tq3s8fJ1kP0Lm9Nb2Vc7Xz5Qw4Er6Ty8Ui0Op1As', []],
  ['github token with checksum', `token ${GH}`, [['GITHUB_TOKEN', GH]]],
  ['github token failing checksum', `token ${GH_BAD}`, []],
  ['github placeholder', 'ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', []],
  [
    'slack bot token',
    'xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
    [['SLACK_TOKEN', 'xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx']],
  ],
  ['slack placeholder', 'SLACK_TOKEN=xoxb-your-bot-token', []],
  ['stripe secret', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc', [['STRIPE_KEY', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc']]],
  ['stripe publishable', 'pk_live_4eC39HqLyjWDarjtT1zdp7dc', []],
  ['gcp key', 'AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY', [['GCP_API_KEY', 'AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY']]],
  ['gcp placeholder', 'key=AIza<YOUR_KEY>', []],
  [
    'PEM with real newlines',
    `x\n-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}\n-----END RSA PRIVATE KEY-----\ny`,
    [['PRIVATE_KEY', `-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}\n-----END RSA PRIVATE KEY-----`]],
  ],
  [
    'PEM with \\n escapes',
    `{"key":"-----BEGIN PRIVATE KEY-----\\n${PEM_BODY}\\n-----END PRIVATE KEY-----\\n"}`,
    [['PRIVATE_KEY', `-----BEGIN PRIVATE KEY-----\\n${PEM_BODY}\\n-----END PRIVATE KEY-----`]],
  ],
  [
    'PEM in indented YAML',
    `tls:\n  key: |\n    -----BEGIN EC PRIVATE KEY-----\n    ${PEM_BODY}\n    -----END EC PRIVATE KEY-----\n`,
    [['PRIVATE_KEY', `-----BEGIN EC PRIVATE KEY-----\n    ${PEM_BODY}\n    -----END EC PRIVATE KEY-----`]],
  ],
  ['public key', `-----BEGIN PUBLIC KEY-----\n${PEM_BODY}\n-----END PUBLIC KEY-----`, []],
  ['certificate', `-----BEGIN CERTIFICATE-----\n${PEM_BODY}\n-----END CERTIFICATE-----`, []],
  [
    'JWT, all three parts',
    'Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
    [
      [
        'JWT',
        'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
      ],
    ],
  ],
  ['JWT header without alg', 'eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl', []],
  [
    'connection string, whole span',
    'DATABASE_URL=mongodb+srv://admin:S3cr3tPw@cluster0.mongodb.net/app?retryWrites=true.',
    [['CONNECTION_STRING', 'mongodb+srv://admin:S3cr3tPw@cluster0.mongodb.net/app?retryWrites=true']],
  ],
  ['connection string with ${VAR}', 'postgres://app:${DB_PASSWORD}@db:5432/app', []],
  ['connection string with <password>', 'mysql://root:<password>@localhost/db', []],
  ['connection string without password', 'redis://cache:6379/0', []],
  ['generic secret near a keyword', 'api_key = "q8Zr2LmN4vB7xC1pK9sT"', [['GENERIC_SECRET', 'q8Zr2LmN4vB7xC1pK9sT']]],
  ['generic placeholder', 'api_key = "your-api-key-here-123"', []],
  ['low entropy value', 'password: aaaaaaaaaaaa1111', []],
  // near-misses that must stay quiet
  ['C4 and S3', 'store it in S3, the C4 model, an A4 page and a T2 instance', []],
  ['UUID', 'request 123e4567-e89b-12d3-a456-426614174000 failed', []],
  ['git SHA', 'commit 3f786850e387550fdab836ed7e6dc881de23001b', []],
  ['semver and dates', 'v1.2.3 released 2024-01-15 at 10:30:00', []],
  // one finding per entity
  ['card digits inside a token', 'tok_4111111111111111abc', []],
  // normalisation
  [
    'zero-width inside a key',
    'AK\u200bIAZ3MSJV6WW\u200dQXWFT2K',
    [['AWS_ACCESS_KEY', 'AK\u200bIAZ3MSJV6WW\u200dQXWFT2K']],
  ],
  ['bidi controls inside an email', 'a\u202elice@example.com', [['EMAIL', 'a\u202elice@example.com']]],
  ['full-width digits', 'SSN ５３６-２２-１２３４', [['US_SSN', '５３６-２２-１２３４']]],
  ['emoji before an entity', '😀😀 jane@example.com', [['EMAIL', 'jane@example.com']]],
];

describe('what counts (issue #13)', () => {
  it.each(rows)('%s', (_name, text, expected) => {
    expect(found(text)).toEqual(expected);
  });
});

describe('findings', () => {
  it('carry data class, action and confidence', () => {
    const [f] = scanner.scan('NHS number 943 476 5919');
    expect(f).toMatchObject({ type: 'UK_NHS', dataClass: 'PHI', action: 'redact' });
    expect(f!.confidence).toBeGreaterThanOrEqual(0.5);
    expect(scanner.scan('AKIAZ3MSJV6WWQXWFT2K')[0]).toMatchObject({ dataClass: 'SECRET', action: 'block' });
    expect(scanner.scan('4111111111111111')[0]).toMatchObject({ dataClass: 'PCI' });
  });

  it('follow the policy: actions, detectors off, context words, custom patterns and word lists', () => {
    const s = compileDlp({
      name: 'p',
      detectors: { EMAIL: 'pseudonymise', PHONE: 'off' },
      minConfidence: 0.7,
      context: { lower: ['sample'] },
      patterns: [{ name: 'PROJECT_CODE', regex: 'PRJ-[0-9]{4}', action: 'block' }],
      wordLists: [{ name: 'CODENAME', words: ['blue falcon', 'Nightjar'], dataClass: 'custom' }],
    });
    const text =
      'mail a@example.com, call +44 20 7946 0958, PRJ-1234, the nightjar and Blue Falcon, sample 4111111111111111';
    expect(s.scan(text).map((f) => [f.type, text.slice(f.start, f.end), f.action])).toEqual([
      ['EMAIL', 'a@example.com', 'pseudonymise'],
      ['PROJECT_CODE', 'PRJ-1234', 'block'],
      ['CODENAME', 'nightjar', 'redact'],
      ['CODENAME', 'Blue Falcon', 'redact'],
    ]);
  });

  it('raise: a policy context word lifts a finding over minConfidence', () => {
    const strict = compileDlp({ name: 's', minConfidence: 0.95 });
    const raised = compileDlp({ name: 'r', minConfidence: 0.95, context: { raise: ['contact'] } });
    expect(strict.scan('contact: a@example.com')).toEqual([]);
    expect(raised.scan('contact: a@example.com').map((f) => f.type)).toEqual(['EMAIL']);
  });
});
