"""CPU lists as the kernel writes them ("0-3,8,10-11"): parsing and formatting."""


def parse(text):
    """The CPU ids of a kernel CPU list, sorted. Empty text is the empty list."""
    cpus = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            # "0-15:2/4" (stride groups, isolcpus syntax) is not in sysfs files; refuse it
            # rather than guess.
            cpus.update(range(int(lo), int(hi) + 1))
        else:
            cpus.add(int(part))
    return sorted(cpus)


def to_text(cpus):
    """The shortest kernel CPU list for these ids ("2-5,8")."""
    ids = sorted(set(cpus))
    runs = []
    for c in ids:
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)
