// The seeded test messages and the tally (count, bytes, CRC-32) that the
// Node peers share (ws_deflate.mjs, h2_node_client.mjs): four kinds in
// turn (random bytes, random text, compressible bytes, compressible text),
// the edge sizes first, then random sizes up to 256 KiB.

const CRC_TABLE = new Int32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
export const crc32 = (crc, buf) => {
  let c = ~crc;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
};

export class Tally {
  constructor() {
    Object.assign(this, { messages: 0, text: 0, binary: 0, bytes: 0, crc: 0 });
  }
  add(data, isBinary) {
    this.messages++;
    if (isBinary) this.binary++;
    else this.text++;
    this.bytes += data.length;
    this.crc = crc32(this.crc, data);
  }
  toString() {
    return `messages=${this.messages} text=${this.text} binary=${this.binary} bytes=${this.bytes} crc=${this.crc}`;
  }
}


// mulberry32: a small seeded generator
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EDGE_SIZES = [0, 1, 125, 126, 127, 65535, 65536];
const MAX = 1 << 18;
const ALPHABET = [...'abcxyz 09éß€中😀'];
const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'été', '€', '{"id":', '},', '\n'];

// Four kinds in turn: random bytes, random text, compressible bytes,
// compressible text. Returns [payload bytes, isBinary].
export function* messages(seed, count) {
  const r = rng(seed);
  for (let i = 0; i < count; i++) {
    const size =
      i < 4 * EDGE_SIZES.length
        ? EDGE_SIZES[Math.floor(i / 4)]
        : Math.min(MAX, Math.floor(2 ** (r() * 18)));
    const kind = i % 4;
    if (kind === 0) {
      const b = Buffer.alloc(size);
      for (let k = 0; k < size; k++) b[k] = Math.floor(r() * 256);
      yield [b, true];
    } else if (kind === 1) {
      const chars = [];
      for (let n = 0; n < size / 2; ) {
        const c = ALPHABET[Math.floor(r() * ALPHABET.length)];
        chars.push(c);
        n += Buffer.byteLength(c);
      }
      yield [Buffer.from(chars.join(''), 'utf8'), false];
    } else {
      const parts = [];
      let n = 0;
      while (n < size) {
        const w = WORDS[Math.floor(r() * WORDS.length)] + ' ';
        parts.push(w);
        n += Buffer.byteLength(w);
      }
      yield [Buffer.from(parts.join(''), 'utf8'), kind === 2];
    }
  }
}
