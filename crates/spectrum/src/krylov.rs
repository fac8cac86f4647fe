//! The block Golub-Kahan-Lanczos engine of [`lanczos`](crate::lanczos)'s top `k`: the two orthonormal
//! bases, the projected matrix, one block step with full reorthogonalisation, Ritz extraction, explicit
//! residuals and thick restart. (The certified norm keeps a loop of its own: f32 products and local
//! reorthogonalisation, which this engine does not offer.)
//!
//! With `b` vectors per block the engine keeps, at every moment,
//!
//! ```text
//! A V = U B,        Aᵀ U = V Bᵀ + N G
//! ```
//!
//! with `V` (`cols x d`) and `U` (`rows x d`) orthonormal, `B = Uᵀ A V` (`d x d`, upper triangular),
//! `N` the next right block (`cols x b`, orthonormal, orthogonal to `V`) and `G` (`b x d`). A plain run
//! is the block-bidiagonal case: `B` has `R_j` on its diagonal and `D_jᵀ` above it, and `G` is zero but
//! for its last block `D_j`. A step appends `N` to `V`: `W = A N - U Gᵀ` (`Uᵀ A N = Gᵀ`),
//! reorthogonalised against `U`, is `U_new R`; `Z = Aᵀ U_new - N Rᵀ`, reorthogonalised against `V`, is
//! `N_new D`; so `B` gains the column block `[Gᵀ; R]` and `G` becomes `[0 … 0 D]`.
//!
//! A Ritz triple `(σ, U p, V q)` of the SVD `B = P Σ Qᵀ` satisfies `A V q = σ U p` exactly and
//! `Aᵀ U p - σ V q = N G p`, so its residual is `||G p||` (no product with `A`). A thick restart keeps
//! the first `m` triples: `V ← V Q_m`, `U ← U P_m`, `B ← Σ_m`, `G ← G P_m`, and the relations above
//! still hold (the Krylov-Schur form of the bidiagonalisation; Baglama and Reichel's augmented
//! restart with the Ritz vectors of the wanted values).

use convmat_matrix::{Conv, Operator};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::tall::{combine, mul, orthogonalize, qr};
use crate::{Monitor, SpectrumError};

/// The bases and projections of a block Golub-Kahan-Lanczos run (see the module docs).
pub(crate) struct Bidiagonalization<'a> {
    op: Operator<'a, f64>,
    rows: usize,
    cols: usize,
    /// Vectors per block.
    b: usize,
    /// `V`, column-major `cols x d`.
    v: Vec<f64>,
    /// `U`, column-major `rows x d`.
    u: Vec<f64>,
    /// `N`, column-major `cols x b`.
    next: Vec<f64>,
    /// `B = Uᵀ A V`.
    projection: Mat<f64>,
    /// `G`: `Aᵀ U = V Bᵀ + N G`.
    coupling: Mat<f64>,
    /// `G`'s columns before this one are zero (`d - b` in a plain run, 0 after a restart).
    coupling_from: usize,
    /// Block steps taken.
    steps: usize,
    w: Vec<f64>,
    z: Vec<f64>,
}

/// Ritz triples of the projection: values (nonincreasing), left and (if asked) right vectors in the
/// bases' coordinates, and each triple's absolute residual `||Aᵀ u - σ v|| = ||G p||`.
pub(crate) struct RitzTriples {
    pub values: Vec<f64>,
    pub left: Mat<f64>,
    pub right: Option<Mat<f64>>,
    pub residuals: Vec<f64>,
}

impl<'a> Bidiagonalization<'a> {
    /// Starts from the block `start` (column-major, `cols x b`, not necessarily orthonormal).
    pub fn new(conv: &'a Conv<f64>, start: &[f64]) -> Result<Self, SpectrumError> {
        let (rows, cols) = (conv.rows(), conv.cols());
        let b = start.len() / cols;
        let next = qr(start, cols)?.0;
        Ok(Self {
            op: Operator::new(conv),
            rows,
            cols,
            b,
            v: Vec::new(),
            u: Vec::new(),
            next,
            projection: Mat::zeros(0, 0),
            coupling: Mat::zeros(b, 0),
            coupling_from: 0,
            steps: 0,
            w: vec![0.0; rows * b],
            z: vec![0.0; cols * b],
        })
    }

    /// The dimension `d` of the bases.
    pub fn dim(&self) -> usize {
        self.projection.nrows()
    }

    /// Block steps taken (restarts do not count).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// One block step (see the module docs), the cancel flag looked at between its products.
    pub fn step(&mut self, monitor: &Monitor<'_>) -> Result<(), SpectrumError> {
        let (rows, cols, b, d) = (self.rows, self.cols, self.b, self.dim());
        // W = A N - U Gᵀ, reorthogonalised, = U_new R
        self.op.apply(&self.next, &mut self.w)?;
        if d > 0 {
            let from = self.coupling_from;
            let u = MatRef::from_column_major_slice(&self.u[from * rows..], rows, d - from);
            let g = self.coupling.as_ref().subcols(from, d - from);
            let wm = MatMut::from_column_major_slice_mut(&mut self.w, rows, b);
            mul(wm, Accum::Add, u, g.transpose(), -1.0);
        }
        // a block step is several products: look at the flag between them too
        monitor.check()?;
        orthogonalize(&self.u, rows, &mut self.w);
        monitor.check()?;
        let (u_new, r) = qr(&self.w, rows)?;
        // Z = Aᵀ U_new - N Rᵀ, reorthogonalised, = N_new D
        self.op.adjoint(&u_new, &mut self.z)?;
        let nm = MatRef::from_column_major_slice(&self.next, cols, b);
        let zm = MatMut::from_column_major_slice_mut(&mut self.z, cols, b);
        mul(zm, Accum::Add, nm, r.transpose(), -1.0);
        self.v.extend_from_slice(&self.next);
        self.u.extend_from_slice(&u_new);
        monitor.check()?;
        orthogonalize(&self.v, cols, &mut self.z);
        let (next, dblock) = qr(&self.z, cols)?;
        self.next = next;
        // B gains [Gᵀ; R]; G becomes [0 … 0 D]
        let mut projection = Mat::<f64>::zeros(d + b, d + b);
        projection.as_mut().submatrix_mut(0, 0, d, d).copy_from(&self.projection);
        projection.as_mut().submatrix_mut(0, d, d, b).copy_from(self.coupling.transpose());
        projection.as_mut().submatrix_mut(d, d, b, b).copy_from(&r);
        self.projection = projection;
        let mut coupling = Mat::<f64>::zeros(b, d + b);
        coupling.as_mut().submatrix_mut(0, d, b, b).copy_from(&dblock);
        self.coupling = coupling;
        self.coupling_from = d;
        self.steps += 1;
        Ok(())
    }

    /// The Ritz triples of the projection: all values, the left vectors, the right ones if asked.
    pub fn ritz(&self, right: bool) -> Result<RitzTriples, SpectrumError> {
        let b = self.projection.as_ref();
        let (values, left, right) = if right {
            let svd = b.svd().map_err(|_| SpectrumError::Svd)?;
            let values = svd.S().column_vector().iter().copied().collect();
            (values, svd.U().to_owned(), Some(svd.V().to_owned()))
        } else {
            let (s, u) = crate::dense::svd_left(b, true, Par::rayon(0))?;
            (s, u.expect("left vectors were asked for"), None)
        };
        let from = self.coupling_from;
        let g = self.coupling.as_ref().subcols(from, self.dim() - from);
        let tail = left.as_ref().subrows(from, self.dim() - from);
        let residuals = (0..values.len()).map(|i| (g * tail.col(i)).norm_l2()).collect();
        Ok(RitzTriples { values, left, right, residuals })
    }

    /// `V q` for the columns of `q` (column-major `cols x q.ncols()`).
    pub fn right_vectors(&self, q: MatRef<'_, f64>) -> Vec<f64> {
        combine(&self.v, self.cols, q)
    }

    /// Thick restart: keeps the first `keep` Ritz triples of `ritz` (which must carry right vectors)
    /// as the new bases (see the module docs).
    pub fn restart(&mut self, ritz: &RitzTriples, keep: usize) {
        let right = ritz.right.as_ref().expect("a restart needs the right Ritz vectors");
        let keep = keep.min(self.dim());
        let p = ritz.left.as_ref().subcols(0, keep);
        self.v = combine(&self.v, self.cols, right.as_ref().subcols(0, keep));
        self.u = combine(&self.u, self.rows, p);
        let from = self.coupling_from;
        let d = self.dim();
        let g = self.coupling.as_ref().subcols(from, d - from) * p.subrows(from, d - from);
        self.coupling = g;
        self.coupling_from = 0;
        self.projection = Mat::from_fn(keep, keep, |i, j| if i == j { ritz.values[i] } else { 0.0 });
    }

    /// The explicit residuals `max(||A x - σ y||, ||Aᵀ y - σ x||)` of the first `k` Ritz triples of
    /// `ritz` (which must carry right vectors), with `x = V q`, `y = U p`: one block product each way.
    pub fn explicit_residuals(&mut self, ritz: &RitzTriples, k: usize) -> Result<Vec<f64>, SpectrumError> {
        let (rows, cols) = (self.rows, self.cols);
        let right = ritz.right.as_ref().expect("explicit residuals need the right Ritz vectors");
        let x = self.right_vectors(right.as_ref().subcols(0, k));
        let y = combine(&self.u, rows, ritz.left.as_ref().subcols(0, k));
        let (mut ax, mut aty) = (vec![0.0; rows * k], vec![0.0; cols * k]);
        self.op.apply(&x, &mut ax)?;
        self.op.adjoint(&y, &mut aty)?;
        Ok((0..k)
            .map(|i| {
                let s = ritz.values[i];
                let forward = dist(&ax[i * rows..(i + 1) * rows], s, &y[i * rows..(i + 1) * rows]);
                let backward = dist(&aty[i * cols..(i + 1) * cols], s, &x[i * cols..(i + 1) * cols]);
                forward.max(backward)
            })
            .collect())
    }
}

/// `||a - s b||`.
fn dist(a: &[f64], s: f64, b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| (a - s * b) * (a - s * b)).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::random_vector;
    use convmat_shape::{ConvSpec, Geometry, Padding};

    /// `A V = U B` and `Aᵀ U = V Bᵀ + N G` with orthonormal `[V N]` and `U`, after plain steps and
    /// after a thick restart followed by more steps; the residuals `||G p||` are the explicit ones.
    #[test]
    fn relations_hold_through_steps_and_restarts() {
        let spec = ConvSpec::new(2, 2, 3, [3]).with_padding(Padding::uniform(1)).with_bias(false);
        let w = random_vector(spec.weight_shape().iter().product());
        let conv = Conv::new(Geometry::new(&spec, &[7, 6]).unwrap(), w, None).unwrap();
        let (rows, cols) = (conv.rows(), conv.cols());
        let a = conv.dense();
        let a = Mat::<f64>::from_fn(rows, cols, |i, j| a[[i, j]]);
        let check = |k: &Bidiagonalization<'_>, what: &str| {
            let d = k.dim();
            let v = MatRef::from_column_major_slice(&k.v, cols, d);
            let u = MatRef::from_column_major_slice(&k.u, rows, d);
            let n = MatRef::from_column_major_slice(&k.next, cols, k.b);
            let scale = a.norm_l2();
            assert!((&a * v - u * &k.projection).norm_l2() <= 1e-12 * scale, "{what}: A V != U B");
            let rhs = v * k.projection.transpose() + n * &k.coupling;
            assert!((a.transpose() * u - rhs).norm_l2() <= 1e-12 * scale, "{what}: Aᵀ U != V Bᵀ + N G");
            let mut vn = Mat::<f64>::zeros(cols, d + k.b);
            vn.as_mut().subcols_mut(0, d).copy_from(v);
            vn.as_mut().subcols_mut(d, k.b).copy_from(n);
            for (name, q) in [("[V N]", vn.as_ref()), ("U", u)] {
                let e = q.transpose() * q - Mat::<f64>::identity(q.ncols(), q.ncols());
                assert!(e.norm_l2() <= 1e-12, "{what}: {name} not orthonormal");
            }
            let t = k.ritz(true).unwrap();
            let right = t.right.as_ref().unwrap();
            for i in 0..d {
                let (x, y) = (v * right.col(i), u * t.left.col(i));
                let r = (a.transpose() * &y - &x * faer::Scale(t.values[i])).norm_l2();
                assert!((r - t.residuals[i]).abs() <= 1e-12 * scale, "{what}: residual {i}: {r} vs {}", t.residuals[i]);
            }
        };
        let mut k = Bidiagonalization::new(&conv, &random_vector(cols * 3)).unwrap();
        let monitor = Monitor::new();
        for _ in 0..5 {
            k.step(&monitor).unwrap();
        }
        check(&k, "5 steps");
        for round in 0..2 {
            let t = k.ritz(true).unwrap();
            k.restart(&t, 7);
            assert_eq!(k.dim(), 7);
            check(&k, &format!("restart {round}"));
            for _ in 0..4 {
                k.step(&monitor).unwrap();
            }
            check(&k, &format!("restart {round} and 4 steps"));
        }
    }
}
