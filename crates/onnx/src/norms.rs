//! The model's norms: every block's certified spectral norm and the graph's Lipschitz bound, as
//! convmat-net computes them for any graph ([`convmat_net::Graph::norms`]) on the graph this reader
//! makes of the model.

use convmat_net::{Monitor, NetworkNorms};

use crate::blocks::BlockOptions;
use crate::network::Network;
use crate::{Model, OnnxError};

impl Network<'_> {
    /// Every block's norm interval and the graph's Lipschitz bound (see [`NetworkNorms`]), each block
    /// built when its turn comes. `tol`: the relative width the certified norms stop at. `on_block(i, n,
    /// name)` is called before block `i` of `n`; `monitor` watches (and may cancel) each block's run.
    ///
    /// # Errors
    /// [`OnnxError::Graph`]: a block that cannot be built, a norm that fails or is cancelled
    /// ([`convmat_net::NetError::is_cancelled`]).
    pub fn norms(
        &self,
        tol: f64,
        monitor: &Monitor<'_>,
        on_block: impl FnMut(usize, usize, &str),
    ) -> Result<NetworkNorms, OnnxError> {
        self.graph().norms(self, tol, monitor, on_block).map_err(|e| OnnxError::Graph(Box::new(e)))
    }
}

impl Model {
    /// [`Network::norms`] of the model read as a graph ([`network`](Self::network)): chains and graphs
    /// with residual Adds, Concats, Splits alike.
    ///
    /// # Errors
    /// As [`network`](Self::network) and [`Network::norms`].
    pub fn block_norms(
        &self,
        input_shape: Option<&[usize]>,
        opts: &BlockOptions,
        tol: f64,
        monitor: &Monitor<'_>,
        on_block: impl FnMut(usize, usize, &str),
    ) -> Result<NetworkNorms, OnnxError> {
        self.network(input_shape, opts)?.norms(tol, monitor, on_block)
    }
}
