"""The host as sysfs describes it: NUMA nodes, CPUs, physical cores (SMT siblings), PCI
devices and hugepages. Every read tolerates a missing file (virtual machines and containers
leave many out) and says so by returning None, so that callers can report "not visible"
instead of crashing.

`root` is the directory that stands for /sys, so that a fabricated copy can be read in tests.
"""

import os

import cpulist


class Sysfs:
    def __init__(self, root="/sys"):
        self.root = root.rstrip("/") or "/"

    def path(self, rel):
        return os.path.join(self.root, rel)

    def read(self, rel):
        """The stripped text of a sysfs file, or None when it is missing or unreadable."""
        try:
            with open(self.path(rel), encoding="ascii", errors="replace") as f:
                return f.read().strip()
        except OSError:
            return None

    def read_int(self, rel):
        text = self.read(rel)
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None

    def listdir(self, rel):
        try:
            return sorted(os.listdir(self.path(rel)))
        except OSError:
            return []

    def link_name(self, rel):
        """The last component of a symlink's target (a driver's name), or None."""
        try:
            return os.path.basename(os.readlink(self.path(rel)))
        except OSError:
            return None


def _numbered(names, prefix):
    out = []
    for n in names:
        if n.startswith(prefix) and n[len(prefix):].isdigit():
            out.append(int(n[len(prefix):]))
    return sorted(out)


class Topology:
    """CPUs grouped by NUMA node and physical core."""

    def __init__(self, sysfs):
        self.sysfs = sysfs
        online = sysfs.read("devices/system/cpu/online")
        if online is not None:
            self.cpus = cpulist.parse(online)
        else:
            self.cpus = _numbered(sysfs.listdir("devices/system/cpu"), "cpu")
        # node -> cpus; a host without node directories is one node 0.
        self.node_cpus = {}
        for n in _numbered(sysfs.listdir("devices/system/node"), "node"):
            text = sysfs.read(f"devices/system/node/node{n}/cpulist")
            if text is not None:
                self.node_cpus[n] = [c for c in cpulist.parse(text) if c in self.cpus]
        self.numa_visible = bool(self.node_cpus)
        if not self.node_cpus:
            self.node_cpus = {0: list(self.cpus)}
        self.cpu_node = {c: n for n, cs in self.node_cpus.items() for c in cs}
        # cpu -> its SMT siblings (itself included); no topology file means no SMT seen.
        self.siblings = {}
        for c in self.cpus:
            text = sysfs.read(f"devices/system/cpu/cpu{c}/topology/thread_siblings_list")
            sib = cpulist.parse(text) if text else [c]
            self.siblings[c] = [s for s in sib if s in self.cpus] or [c]

    def nodes(self):
        return sorted(self.node_cpus)

    def node_of_cpu(self, cpu):
        return self.cpu_node.get(cpu)

    def cores(self, node):
        """The physical cores of a node, each as its sorted list of hardware threads, in
        order of their first thread."""
        seen = set()
        out = []
        for c in sorted(self.node_cpus.get(node, [])):
            if c in seen:
                continue
            core = sorted(self.siblings.get(c, [c]))
            seen.update(core)
            out.append(core)
        return out

    def smt(self):
        return any(len(s) > 1 for s in self.siblings.values())


def normalise_pci(addr):
    """A PCI address with its domain ("3b:00.0" -> "0000:3b:00.0"), lower case; None when
    the text is not one."""
    a = addr.strip().lower()
    if a.count(":") == 1:
        a = "0000:" + a
    parts = a.split(":")
    if len(parts) != 3 or "." not in parts[2]:
        return None
    dom, bus, rest = parts
    dev, fn = rest.split(".", 1)
    try:
        int(dom, 16), int(bus, 16), int(dev, 16), int(fn, 16)
    except ValueError:
        return None
    if len(dom) != 4 or len(bus) != 2 or len(dev) != 2 or len(fn) != 1:
        return None
    return a


class PciDevice:
    def __init__(self, sysfs, addr):
        self.addr = addr
        base = f"bus/pci/devices/{addr}"
        self.exists = os.path.isdir(sysfs.path(base))
        # numa_node is -1 when the firmware does not say (single-node hosts, many VMs).
        self.numa_node = sysfs.read_int(f"{base}/numa_node")
        self.driver = sysfs.link_name(f"{base}/driver")
        self.netdevs = sysfs.listdir(f"{base}/net")
        self.iommu_group = sysfs.link_name(f"{base}/iommu_group")
        self.vendor = sysfs.read(f"{base}/vendor")


def hugepages(sysfs, node):
    """{page size in kB: (total, free)} of a NUMA node; falls back to the global pool
    (/sys/kernel/mm/hugepages) when the node has no per-node directory."""
    out = {}
    for rel in (f"devices/system/node/node{node}/hugepages", "kernel/mm/hugepages"):
        for d in sysfs.listdir(rel):
            if not (d.startswith("hugepages-") and d.endswith("kB")):
                continue
            size = int(d[len("hugepages-"):-2])
            total = sysfs.read_int(f"{rel}/{d}/nr_hugepages")
            free = sysfs.read_int(f"{rel}/{d}/free_hugepages")
            if total is not None:
                out[size] = (total, free if free is not None else 0)
        if out:
            return out
    return out
