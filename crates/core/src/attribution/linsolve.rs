//! A small dense linear solver: Gaussian elimination with partial pivoting.
//!
//! The Markov model needs the absorption probabilities of a chain, i.e. the
//! solution of `(I − Q) x = r`. That is an exact linear solve (up to
//! floating-point rounding), not a simulation or an iteration to
//! convergence. Systems are small (one row per chain state), so a dense
//! `O(n³)` elimination is simple and fast enough.

/// Solve `a · x = b` in place: `a` is `n × n` row-major, `b` becomes `x`.
///
/// Returns `false` if the matrix is singular (a pivot is exactly zero or not
/// finite). The operation order is fixed, so results are deterministic.
pub(crate) fn solve_in_place(a: &mut [f64], b: &mut [f64], n: usize) -> bool {
    debug_assert_eq!(a.len(), n * n);
    debug_assert_eq!(b.len(), n);
    for col in 0..n {
        // Partial pivoting: the largest magnitude in this column, first on ties.
        let mut pivot = col;
        for row in col + 1..n {
            if a[row * n + col].abs() > a[pivot * n + col].abs() {
                pivot = row;
            }
        }
        let p = a[pivot * n + col];
        if p == 0.0 || !p.is_finite() {
            return false;
        }
        if pivot != col {
            for k in 0..n {
                a.swap(pivot * n + k, col * n + k);
            }
            b.swap(pivot, col);
        }
        for row in col + 1..n {
            let factor = a[row * n + col] / p;
            if factor == 0.0 {
                continue;
            }
            a[row * n + col] = 0.0;
            for k in col + 1..n {
                a[row * n + k] -= factor * a[col * n + k];
            }
            b[row] -= factor * b[col];
        }
    }
    for col in (0..n).rev() {
        let mut sum = b[col];
        for k in col + 1..n {
            sum -= a[col * n + k] * b[k];
        }
        b[col] = sum / a[col * n + col];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_three_by_three_system_is_solved_exactly() {
        // 2x + y − z = 8; −3x − y + 2z = −11; −2x + y + 2z = −3 → (2, 3, −1).
        let mut a = vec![2.0, 1.0, -1.0, -3.0, -1.0, 2.0, -2.0, 1.0, 2.0];
        let mut b = vec![8.0, -11.0, -3.0];
        assert!(solve_in_place(&mut a, &mut b, 3));
        for (got, want) in b.iter().zip([2.0, 3.0, -1.0]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn a_singular_system_is_reported() {
        let mut a = vec![1.0, 2.0, 2.0, 4.0];
        let mut b = vec![1.0, 2.0];
        assert!(!solve_in_place(&mut a, &mut b, 2));
    }
}
