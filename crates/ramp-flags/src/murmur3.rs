//! MurmurHash3, x86 32-bit variant (Austin Appleby's `MurmurHash3_x86_32`), the hash flagd
//! uses for `fractional`. It is small enough to own here, and owning it lets the proxy hash
//! `salt + user` in two pieces without allocating.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// Hashes `data` in one call; equal to feeding it to [`Murmur3x86_32`] in any number of pieces.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    let mut hasher = Murmur3x86_32::new(seed);
    hasher.update(data);
    hasher.finish()
}

/// An incremental MurmurHash3 x86 32-bit hasher, so that a value made of several byte slices
/// (flag key, then targeting key) hashes as their concatenation would.
#[derive(Debug, Clone)]
pub struct Murmur3x86_32 {
    /// The running state `h1` of the reference implementation.
    h1: u32,
    /// Bytes of an incomplete 4-byte block carried to the next `update`.
    tail: [u8; 4],
    /// How many bytes of `tail` are in use (0..=3 between calls).
    tail_len: usize,
    /// Total number of bytes hashed; the reference mixes `len` in at the end (mod 2^32).
    len: u64,
}

#[inline]
fn mix_k1(mut k1: u32) -> u32 {
    k1 = k1.wrapping_mul(C1);
    k1 = k1.rotate_left(15);
    k1.wrapping_mul(C2)
}

#[inline]
fn mix_block(h1: u32, block: [u8; 4]) -> u32 {
    let k1 = u32::from_le_bytes(block);
    let mut h = h1 ^ mix_k1(k1);
    h = h.rotate_left(13);
    h.wrapping_mul(5).wrapping_add(0xe654_6b64)
}

impl Murmur3x86_32 {
    /// Starts a hash with the given seed (flagd uses seed 0).
    pub fn new(seed: u32) -> Self {
        Self {
            h1: seed,
            tail: [0; 4],
            tail_len: 0,
            len: 0,
        }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.tail_len > 0 {
            let need = 4 - self.tail_len;
            let take = need.min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len < 4 {
                return;
            }
            self.h1 = mix_block(self.h1, self.tail);
            self.tail_len = 0;
        }
        let mut chunks = data.chunks_exact(4);
        for chunk in &mut chunks {
            self.h1 = mix_block(self.h1, [chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let rest = chunks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// Finishes the hash (tail bytes and the final avalanche of the reference code).
    pub fn finish(&self) -> u32 {
        let mut h1 = self.h1;
        if self.tail_len > 0 {
            let mut k1 = 0u32;
            for (i, byte) in self.tail[..self.tail_len].iter().enumerate() {
                k1 ^= u32::from(*byte) << (8 * i);
            }
            h1 ^= mix_k1(k1);
        }
        // The reference takes `len` as a 32-bit int; inputs over 4 GiB wrap the same way.
        h1 ^= self.len as u32;
        h1 ^= h1 >> 16;
        h1 = h1.wrapping_mul(0x85eb_ca6b);
        h1 ^= h1 >> 13;
        h1 = h1.wrapping_mul(0xc2b2_ae35);
        h1 ^= h1 >> 16;
        h1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published MurmurHash3_x86_32 vectors (from the reference SMHasher implementation, as
    /// collected in the widely cited verification table), covering every tail length.
    #[test]
    fn known_vectors() {
        let cases: &[(&[u8], u32, u32)] = &[
            (b"", 0, 0),
            (b"", 1, 0x514E_28B7),
            (b"", 0xffff_ffff, 0x81F1_6F39),
            (&[0xff, 0xff, 0xff, 0xff], 0, 0x7629_3B50),
            (&[0x21, 0x43, 0x65, 0x87], 0, 0xF55B_516B),
            (&[0x21, 0x43, 0x65, 0x87], 0x5082_EDEE, 0x2362_F9DE),
            (&[0x21, 0x43, 0x65], 0, 0x7E4A_8634),
            (&[0x21, 0x43], 0, 0xA0F7_B07A),
            (&[0x21], 0, 0x7266_1CF4),
            (&[0, 0, 0, 0], 0, 0x2362_F9DE),
            (&[0, 0, 0], 0, 0x85F0_B427),
            (&[0, 0], 0, 0x30F4_C306),
            (&[0], 0, 0x514E_28B7),
            (b"aaaa", 0x9747_b28c, 0x5A97_808A),
            (b"aaa", 0x9747_b28c, 0x283E_0130),
            (b"aa", 0x9747_b28c, 0x5D21_1726),
            (b"a", 0x9747_b28c, 0x7FA0_9EA6),
            (b"abcd", 0x9747_b28c, 0xF047_8627),
            (b"abc", 0x9747_b28c, 0xC84A_62DD),
            (b"ab", 0x9747_b28c, 0x7487_5592),
            (b"Hello, world!", 0x9747_b28c, 0x2488_4CBA),
            (
                b"The quick brown fox jumps over the lazy dog",
                0x9747_b28c,
                0x2FA8_26CD,
            ),
        ];
        for (data, seed, want) in cases {
            assert_eq!(
                murmur3_x86_32(data, *seed),
                *want,
                "data {data:?} seed {seed:#x}"
            );
        }
    }

    #[test]
    fn incremental_equals_one_shot_for_every_split() {
        let data = b"The quick brown fox jumps over the lazy dog";
        let whole = murmur3_x86_32(data, 7);
        for split_a in 0..data.len() {
            for split_b in split_a..data.len() {
                let mut h = Murmur3x86_32::new(7);
                h.update(&data[..split_a]);
                h.update(&data[split_a..split_b]);
                h.update(&data[split_b..]);
                assert_eq!(h.finish(), whole, "split at {split_a}, {split_b}");
            }
        }
    }
}
