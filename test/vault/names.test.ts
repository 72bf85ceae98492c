import { describe, expect, it } from 'vitest';
import { checkMediaType, checkName, checkTags, decodeComponent, strictUtf8 } from '../../src/vault/names.js';

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'OK';
};

describe('document and folder names', () => {
  it('accepts ordinary names and normalises them to NFC', () => {
    expect(checkName('Board minutes 2026-Q3.pdf')).toBe('Board minutes 2026-Q3.pdf');
    expect(checkName('Cafe\u0301.txt')).toBe('Café.txt');
    expect(checkName('契約書.docx')).toBe('契約書.docx');
    expect(checkName('a'.repeat(255))).toHaveLength(255);
    expect(checkName('..hidden')).toBe('..hidden');
  });

  it.each([
    ['../etc/passwd', 'path separator'],
    ['..', 'dot-dot'],
    ['.', 'dot'],
    ['a\\b', 'backslash'],
    ['a\u0000b', 'NUL'],
    ['a\nb', 'newline'],
    ['a\u007fb', 'DEL'],
    ['invoice\u202Efdp.exe', 'bidi override'],
    ['', 'empty'],
    [' padded', 'leading space'],
    ['a'.repeat(256), '256 characters'],
    ['x'.repeat(10_000), '10,000 characters'],
    ['\uD800abc', 'lone surrogate'],
    ['bad\uFFFDutf8', 'U+FFFD from a lenient decoder'],
  ])('refuses %j (%s) with INVALID_NAME', (name) => {
    expect(code(() => checkName(name))).toBe('INVALID_NAME');
  });

  it('refuses non-strings', () => {
    expect(code(() => checkName(42))).toBe('INVALID_NAME');
  });

  it('decodes strictly: invalid UTF-8 is an error, not U+FFFD', () => {
    expect(strictUtf8(Buffer.from('héllo'))).toBe('héllo');
    expect(code(() => strictUtf8(Buffer.from([0x61, 0xff, 0xfe])))).toBe('INVALID_NAME');
    expect(code(() => strictUtf8(Buffer.from([0xc3])))).toBe('INVALID_NAME');
    expect(decodeComponent('caf%C3%A9+x')).toBe('café x');
    expect(code(() => decodeComponent('%FF%FE'))).toBe('INVALID_NAME');
    expect(code(() => decodeComponent('%C3'))).toBe('INVALID_NAME');
  });

  it('tags: deduplicated, bounded, same character rules', () => {
    expect(checkTags(['legal', 'legal', 'board'])).toEqual(['legal', 'board']);
    expect(code(() => checkTags(['ok', 'a/b']))).toBe('INVALID_NAME');
    expect(code(() => checkTags(['t'.repeat(65)]))).toBe('INVALID_NAME');
    expect(code(() => checkTags(Array.from({ length: 51 }, (_, i) => `t${i}`)))).toBe('INVALID_INPUT');
    expect(code(() => checkTags('legal'))).toBe('INVALID_INPUT');
  });

  it('media types: well-formed ones kept, anything else is octet-stream', () => {
    expect(checkMediaType('application/pdf; charset=binary')).toBe('application/pdf');
    expect(checkMediaType('Text/HTML')).toBe('text/html');
    expect(checkMediaType('nonsense')).toBe('application/octet-stream');
    expect(checkMediaType(undefined)).toBe('application/octet-stream');
    expect(checkMediaType('a/b\r\nx-injected: 1')).toBe('application/octet-stream');
  });
});
