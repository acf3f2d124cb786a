//! [`Collective`] over MPI (the `mpi` crate over the system's Open MPI or MPICH).

use super::Collective;
use crate::error::Result;
use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::topology::{Communicator, SimpleCommunicator};

/// The MPI world of this process. Create one per process, before any other MPI use, on the
/// thread that trains (MPI is initialised with funneled threading: only that thread calls MPI).
/// Dropping it finalises MPI.
pub struct Mpi {
    world: SimpleCommunicator,
    local_rank: usize,
    local_size: usize,
    // last: finalises MPI when dropped
    _universe: mpi::environment::Universe,
}

impl Mpi {
    /// Initialise MPI. Under `mpirun` this joins the job; started alone it is a job of one rank.
    pub fn init() -> Result<Mpi> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| crate::Error::arg("mpi", "initialize", "MPI was already initialised in this process"))?;
        let world = universe.world();
        // ranks that share memory share a node: their order there picks the GPU
        let node = world.split_shared(world.rank());
        Ok(Mpi {
            local_rank: node.rank() as usize,
            local_size: node.size() as usize,
            world,
            _universe: universe,
        })
    }

    /// This rank's index among the ranks on its node (which GPU of the node it takes).
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// Ranks on this node.
    pub fn local_size(&self) -> usize {
        self.local_size
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum(&self, data: &mut [f32]) -> Result<()> {
        let send = data.to_vec();
        self.world.all_reduce_into(&send[..], data, SystemOperation::sum());
        Ok(())
    }

    fn all_reduce_sum_f64(&self, data: &mut [f64]) -> Result<()> {
        let send = data.to_vec();
        self.world.all_reduce_into(&send[..], data, SystemOperation::sum());
        Ok(())
    }

    fn broadcast(&self, data: &mut [u8], root: usize) -> Result<()> {
        self.world.process_at_rank(root as i32).broadcast_into(data);
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
