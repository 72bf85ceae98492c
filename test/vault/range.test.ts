import { describe, expect, it } from 'vitest';
import { chunkSpan, parseRange } from '../../src/vault/range.js';

const status = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { httpStatus?: number }).httpStatus;
  }
  return 'OK';
};

describe('Range header', () => {
  it('parses single ranges, open ends and suffixes, clipped to the content', () => {
    expect(parseRange('bytes=0-0', 10)).toEqual({ start: 0, end: 0 });
    expect(parseRange('bytes=2-5', 10)).toEqual({ start: 2, end: 5 });
    expect(parseRange('bytes=7-', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=5-100', 10)).toEqual({ start: 5, end: 9 });
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=-30', 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange(' Bytes = 1-2', 10)).toEqual({ start: 1, end: 2 });
  });

  it('ignores what it may ignore: absent, other units, several ranges, bad syntax', () => {
    expect(parseRange(undefined, 10)).toBeNull();
    expect(parseRange('items=0-1', 10)).toBeNull();
    expect(parseRange('bytes=0-1,4-5', 10)).toBeNull();
    expect(parseRange('bytes=5-2', 10)).toBeNull();
    expect(parseRange('bytes=a-b', 10)).toBeNull();
    expect(parseRange('bytes=-', 10)).toBeNull();
  });

  it('answers 416 for a range beyond the end, on empty content, or a zero suffix', () => {
    expect(status(() => parseRange('bytes=10-', 10))).toBe(416);
    expect(status(() => parseRange('bytes=10-20', 10))).toBe(416);
    expect(status(() => parseRange('bytes=0-', 0))).toBe(416);
    expect(status(() => parseRange('bytes=-1', 0))).toBe(416);
    expect(status(() => parseRange('bytes=-0', 10))).toBe(416);
  });

  it('maps a range to the chunks that hold it', () => {
    const C = 65536;
    expect(chunkSpan({ start: 0, end: C - 1 }, C)).toEqual({ firstChunk: 0, lastChunk: 0, skip: 0, length: C });
    expect(chunkSpan({ start: C - 1, end: C }, C)).toEqual({ firstChunk: 0, lastChunk: 1, skip: C - 1, length: 2 });
    expect(chunkSpan({ start: C, end: C }, C)).toEqual({ firstChunk: 1, lastChunk: 1, skip: 0, length: 1 });
    expect(chunkSpan({ start: 3 * C + 5, end: 5 * C }, C)).toEqual({
      firstChunk: 3,
      lastChunk: 5,
      skip: 5,
      length: 2 * C - 4,
    });
  });
});
