"""Peak memory of a Python reference process, read as the Deno side reads its own
(bench/data.ts: peakRssMb, resetPeakRss). Imported by the references beside it."""

import resource


def peak_rss_mb():
    """Peak resident memory of this process in MB: VmHWM, which (unlike ru_maxrss) does not
    inherit the parent's peak across fork + exec; ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss():
    """Lowers VmHWM to the current RSS (Linux >= 4.0); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
