//! The workspace's one seeded generator: reproducible test data, demo weights and random checks.

/// A small seeded pseudo-random generator (xorshift64*), the same on every platform, for reproducible
/// inputs: `convmat check --seed`, the demo's weights, tests and benches. Not for cryptography, and not
/// a statistical-quality generator: its job is to make the same numbers everywhere.
///
/// ```
/// use convmat_numeric::SeededRng;
/// let mut a = SeededRng::new(7);
/// let mut b = SeededRng::new(7);
/// assert_eq!(a.uniform_vec(4), b.uniform_vec(4));
/// assert!(a.uniform_vec(1000).iter().all(|v| (-1.0..1.0).contains(v)));
/// ```
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator started from `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }

    /// Uniform in `[-1, 1)`, a multiple of `2^-52`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// `n` values uniform in `[-1, 1)`.
    pub fn uniform_vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.uniform()).collect()
    }

    /// `n` values uniform in `[-1, 1)`, as `f32`.
    pub fn uniform_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform() as f32).collect()
    }

    /// `n` integers uniform in `-m..=m`, as `f64`: sums and products of them are exact in floating
    /// point, so fast paths can be compared with slow ones for equality.
    pub fn small_ints(&mut self, n: usize, m: u32) -> Vec<f64> {
        let span = 2 * u64::from(m) + 1;
        (0..n).map(|_| (self.next_u64() % span) as f64 - f64::from(m)).collect()
    }
}

/// Marsaglia's plain xorshift64 (shifts 13, 7, 17): the generator behind `xtask/oracle/lowrank_peer.py`'s
/// weights (which benches and tests must reproduce bit for bit) and the seeds of older tests. New code
/// takes [`SeededRng`]; this one keeps those sequences.
///
/// ```
/// use convmat_numeric::Xorshift64;
/// let v = Xorshift64::new(0x2545F4914F6CDD1D).half_vec(3);
/// assert!(v.iter().all(|x| (-0.5..0.5).contains(x)));
/// ```
#[derive(Clone, Debug)]
pub struct Xorshift64(u64);

impl Xorshift64 {
    /// A generator whose state starts at `seed` (nonzero: zero stays zero).
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next state, which is also the output.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[-0.5, 0.5)`, a multiple of `2^-53` (the top 53 bits of the state).
    pub fn half(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }

    /// `n` values of [`half`](Self::half).
    pub fn half_vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.half()).collect()
    }
}
