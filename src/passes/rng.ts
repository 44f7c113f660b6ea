/**
 * The seeded random source for masks and initializers: the same bits on every platform, one independent
 * stream per (seed, tensor name, purpose), so a tensor's mask and init do not depend on which other tensors
 * exist or in what order they are drawn.
 *
 * Algorithm (version "supar-rng-1"; changing any step changes every mask, so bump the version with it):
 * 1. key = UTF-8 bytes of `supar-rng-1\0<seed as decimal>\0<tensor name>\0<purpose>`.
 * 2. h1 = murmur3_x86_32(key, seed 0), h2 = murmur3_x86_32(key, seed 0x9e3779b9) (Appleby's MurmurHash3,
 *    public domain), giving 64 bits of stream key.
 * 3. splitmix32 (state += 0x9e3779b9; z = state; z ^= z>>>16; z *= 0x21f0aaad; z ^= z>>>15; z *= 0x735a2d97;
 *    z ^= z>>>15) seeded with h1 yields a, b; seeded with h2 yields c; the counter d starts at 1.
 * 4. sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 32-bit, from PractRand) with state (a,b,c,d),
 *    with its first 15 outputs discarded. One step:
 *        t = a + b + d; d = d + 1; a = b ^ (b >>> 9); b = c + (c << 3); c = rotl(c, 21) + t; output t
 *    (all mod 2^32).
 * Everything is 32-bit integer arithmetic (`|0`, `>>>`, Math.imul), so the u32 stream is exact everywhere.
 *
 * Derived draws:
 * - `uniform53()` = ((u1 >>> 5) · 2^26 + (u2 >>> 6)) / 2^53, a multiple of 2^-53 in [0, 1); index draws use
 *   floor(uniform53() · n), whose bias is below n / 2^53 (a 32-bit draw would be off by up to n / 2^32).
 *   Exact in IEEE double arithmetic, hence bit-identical everywhere.
 * - `normal()`: Box–Muller on u1 = 1 − uniform53() ∈ (0, 1] (53 bits, for the tails) and u2 = u32 / 2^32 (the
 *   angle needs no more): r = sqrt(−2 ln u1), z0 = r cos(2π u2), z1 = r sin(2π u2); z1 is cached for the next
 *   call. Three u32 draws per pair.
 *   Math.log/cos/sin are not pinned by ECMAScript, so normals are bit-identical across platforms only for the
 *   same engine (V8 ships its own fdlibm port, so all Node builds agree); masks never use them.
 */
import { UserInputError } from '../errors.js';

export const RNG_VERSION = 'supar-rng-1';

const TWO_POW_26 = 67108864;
const TWO_POW_MINUS_53 = 1 / 9007199254740992;
const TWO_PI_OVER_2_POW_32 = (2 * Math.PI) / 4294967296;

/** MurmurHash3 x86 32-bit of `bytes` with `seed` (Austin Appleby, public domain). */
export function murmur3_32(bytes: Uint8Array, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const blocks = bytes.length >>> 2;
  for (let i = 0; i < blocks; i++) {
    const o = i << 2;
    let k = bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks << 2;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = bytes[tail]!;
    if (rest > 1) k |= bytes[tail + 1]! << 8;
    if (rest > 2) k |= bytes[tail + 2]! << 16;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** splitmix32: returns a generator of well-mixed u32 values from a 32-bit state. */
export function splitmix32(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z ^= z >>> 16;
    z = Math.imul(z, 0x21f0aaad);
    z ^= z >>> 15;
    z = Math.imul(z, 0x735a2d97);
    z ^= z >>> 15;
    return z >>> 0;
  };
}

/** A seeded sfc32 stream with uniform and normal draws. Not thread-safe; one per tensor and purpose. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private cachedNormal = 0;
  private hasCachedNormal = false;

  /** Raw state constructor; most callers want `Rng.forTensor`. */
  constructor(a: number, b: number, c: number, d = 1) {
    this.a = a | 0;
    this.b = b | 0;
    this.c = c | 0;
    this.d = d | 0;
    for (let i = 0; i < 15; i++) this.nextU32();
  }

  /** The stream for one tensor and purpose (e.g. "mask", "init") under a user seed (a non-negative integer). */
  static forTensor(seed: number, tensorName: string, purpose: string): Rng {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new UserInputError(`seed ${seed} is not a non-negative integer; pass --seed with a whole number such as 0`);
    }
    const key = new TextEncoder().encode(`${RNG_VERSION}\0${seed}\0${tensorName}\0${purpose}`);
    const first = splitmix32(murmur3_32(key, 0));
    const second = splitmix32(murmur3_32(key, 0x9e3779b9));
    return new Rng(first(), first(), second(), 1);
  }

  /** Next raw output, an integer in [0, 2^32). */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (((this.c << 21) | (this.c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** A multiple of 2^-53 in [0, 1), from two u32 draws. */
  uniform53(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * TWO_POW_26 + lo) * TWO_POW_MINUS_53;
  }

  /** A uniform integer in [0, n), n ≤ 2^53. */
  index(n: number): number {
    return Math.floor(this.uniform53() * n);
  }

  /**
   * `out[p] = 0 + std · normal()` for p = 0 … count−1, or for p = indices[0 … count) (in that order): the
   * same draws, bit for bit, as calling `normal()` once per entry (a cached second value is used first, and
   * an odd count leaves one cached), with the generator's steps inlined: a quarter faster.
   */
  fillNormals(out: Float32Array, std: number, count: number, indices?: Int32Array): void {
    let j = 0;
    if (this.hasCachedNormal && count > 0) {
      this.hasCachedNormal = false;
      out[indices ? indices[j]! : j] = 0 + std * this.cachedNormal;
      j++;
    }
    let a = this.a, b = this.b, c = this.c, d = this.d;
    while (j < count) {
      // Three sfc32 steps (nextU32): u1's high and low words, then the angle's.
      let t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0; a = b ^ (b >>> 9); b = (c + (c << 3)) | 0; c = (((c << 21) | (c >>> 11)) + t) | 0;
      const hi = t >>> 5;
      t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0; a = b ^ (b >>> 9); b = (c + (c << 3)) | 0; c = (((c << 21) | (c >>> 11)) + t) | 0;
      const lo = t >>> 6;
      t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0; a = b ^ (b >>> 9); b = (c + (c << 3)) | 0; c = (((c << 21) | (c >>> 11)) + t) | 0;
      const r = Math.sqrt(-2 * Math.log(1 - (hi * TWO_POW_26 + lo) * TWO_POW_MINUS_53));
      const theta = TWO_PI_OVER_2_POW_32 * (t >>> 0);
      out[indices ? indices[j]! : j] = 0 + std * (r * Math.cos(theta));
      j++;
      const z1 = r * Math.sin(theta);
      if (j < count) {
        out[indices ? indices[j]! : j] = 0 + std * z1;
        j++;
      } else {
        this.cachedNormal = z1;
        this.hasCachedNormal = true;
      }
    }
    this.a = a; this.b = b; this.c = c; this.d = d;
  }

  /** A standard normal draw (Box–Muller; the pair's second value is returned by the next call). */
  normal(): number {
    if (this.hasCachedNormal) {
      this.hasCachedNormal = false;
      return this.cachedNormal;
    }
    const r = Math.sqrt(-2 * Math.log(1 - this.uniform53()));
    const theta = TWO_PI_OVER_2_POW_32 * this.nextU32();
    this.cachedNormal = r * Math.sin(theta);
    this.hasCachedNormal = true;
    return r * Math.cos(theta);
  }
}

/**
 * mulberry32 (Tommy Ettinger): a small, fast seeded generator of uniforms in [0, 1) for things that need
 * no independent per-tensor streams: fixture weights, training-window choice, test data. Masks and
 * initializers use `Rng` above.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
