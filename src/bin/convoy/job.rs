//! Running a command as one rank of an MPI job (`mpirun -np N convoy train|train-step ...`).

use convoy::dist::DistOptions;
use convoy::Error;

/// Ranks in the job when an MPI launcher (mpirun, mpiexec, srun) started this process.
fn launcher_ranks() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
}

/// Join the MPI job this process was launched in, if any: the data-parallel options and this
/// process's node-local rank (which GPU it takes).
#[cfg(feature = "mpi")]
fn join(sync_bn: bool, bucket_mb: f64) -> convoy::Result<Option<(DistOptions, usize)>> {
    if launcher_ranks().is_none() {
        return Ok(None);
    }
    let mpi = convoy::dist::Mpi::init()?;
    let local = mpi.local_rank();
    let mut opts = DistOptions::new(std::rc::Rc::new(mpi));
    opts.sync_bn = sync_bn;
    opts.bucket_bytes = (bucket_mb * 1048576.0) as u64;
    Ok(Some((opts, local)))
}

#[cfg(not(feature = "mpi"))]
fn join(_: bool, _: f64) -> convoy::Result<Option<(DistOptions, usize)>> {
    match launcher_ranks() {
        Some(n) if n > 1 => Err(Error::arg(
            "mpirun",
            "features",
            format!(
                "started as one of {n} MPI ranks, but this convoy was built without the `mpi` feature \
                 (cargo build --release --features mpi), so each rank would train alone"
            ),
        )),
        _ => Ok(None),
    }
}

/// Run `f` with this process's data-parallel options (None outside an MPI job) and node-local
/// rank. An error on one rank ends the whole job (MPI_Abort), so no rank waits forever in a
/// collective for a rank that has stopped.
pub fn run(
    sync_bn: bool,
    bucket_mb: f64,
    f: impl FnOnce(Option<DistOptions>, usize) -> convoy::Result<()>,
) -> convoy::Result<()> {
    if !(bucket_mb > 0.0 && bucket_mb.is_finite()) {
        return Err(Error::arg(
            "mpirun",
            "--bucket-mb",
            format!("{bucket_mb} must be positive"),
        ));
    }
    let Some((opts, local_rank)) = join(sync_bn, bucket_mb)? else {
        if sync_bn {
            eprintln!("note: --sync-bn has no effect in a single process (no mpirun job)");
        }
        return f(None, 0);
    };
    let collective = opts.collective.clone();
    let rank = collective.rank();
    match f(Some(opts), local_rank) {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("convoy: rank {rank}: {e}; stopping all ranks");
            collective.abort(1)
        }
    }
}
