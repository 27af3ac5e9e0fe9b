// Peak memory of a server's process set during a benchmark run, read from /proc.
//
// Each process's peak resident set (VmHWM) is reset when a run starts (writing 5 to
// /proc/PID/clear_refs) and read every `intervalMs` while it lasts; the figure reported is
// the largest sum of VmHWM over the processes alive at one sample. For `postern serve`
// that is its VmHWM; for Postfix, whose smtpd, cleanup and smtp processes come and go,
// the peak of what its processes held at the same time (a process's shared library pages
// count once per process, as in ps(1)'s RSS, so the sum overstates what they share).
// Alongside it, the peak of the processes' summed proportional set size (Pss, shared
// pages divided among their users), sampled: the fairer total for a set of processes.
import { readFileSync, writeFileSync } from 'node:fs';

function statusKiB(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return m ? Number(m[1]) : 0;
  } catch {
    return 0; // gone
  }
}

/** Sum of VmHWM (peak resident set) of `pids`, in KiB. */
export function peakKiB(pids) {
  return pids.reduce((sum, pid) => sum + statusKiB(pid, 'VmHWM'), 0);
}

/** Sum of Pss (proportional set size) of `pids`, in KiB. */
export function pssKiB(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      if (m) sum += Number(m[1]);
    } catch {
      // gone
    }
  }
  return sum;
}

/** Resets the VmHWM of `pids` to their current resident set. */
export function resetPeak(pids) {
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      // gone, or not ours to reset: its peak since start counts
    }
  }
}

/**
 * Starts watching the process set `pidsFn()` returns; `stop()` gives the largest sums
 * seen, in KiB: `hwm` of VmHWM, `pss` of Pss.
 */
export function watchPeak(pidsFn, intervalMs = 200) {
  // Processes started during the run have no earlier peak to forget.
  resetPeak(pidsFn());
  let hwm = 0;
  let pss = 0;
  const sample = () => {
    const pids = pidsFn();
    hwm = Math.max(hwm, peakKiB(pids));
    pss = Math.max(pss, pssKiB(pids));
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { hwm, pss };
    },
  };
}

/** KiB as MiB with one decimal. */
export function mib(kib) {
  return (kib / 1024).toFixed(1);
}
