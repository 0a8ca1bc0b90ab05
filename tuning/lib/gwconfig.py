"""What the host tools need from the gateway's TOML file: the `[dataplane]` lcores and EAL
arguments and the `[[interface]]` devices, with the dataplane's own defaults
(dataplane/src/config/validate.rs: EAL `--no-huge --no-pci -m 512`, main lcore 0, worker
lcore 1, 8192 mbufs) when the file leaves them out.
"""

import tomllib

DEFAULT_EAL = ["--no-huge", "--no-pci", "-m", "512"]
DEFAULT_MAIN = 0
DEFAULT_WORKERS = [1]
DEFAULT_MBUFS = 8192
VDEV_PREFIXES = ("net_", "crypto_", "event_")


class GatewayConfig:
    def __init__(self, path=None, eal=None, main=None, workers=None, devices=None, mbufs=None):
        self.path = path
        self.eal = list(DEFAULT_EAL if eal is None else eal)
        self.main = DEFAULT_MAIN if main is None else main
        self.workers = list(DEFAULT_WORKERS if workers is None else workers)
        # (interface name, role, device string)
        self.devices = devices or []
        self.mbufs = DEFAULT_MBUFS if mbufs is None else mbufs

    @classmethod
    def load(cls, path):
        """Reads FILE; raises ValueError with the reason when it is not a gateway config."""
        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except OSError as e:
            raise ValueError(f"{path}: {e.strerror}") from e
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: {e}") from e
        dp = doc.get("dataplane", {})
        lc = dp.get("lcores")
        main = workers = None
        if lc is not None:
            if not isinstance(lc, dict) or "main" not in lc or "workers" not in lc:
                raise ValueError(f"{path}: [dataplane] lcores needs main and workers")
            main, workers = int(lc["main"]), [int(w) for w in lc["workers"]]
        eal = dp.get("eal") or None  # an empty list means the defaults, as in the dataplane
        devices = []
        for i in doc.get("interface", []):
            devices.append((i.get("name", "?"), i.get("role", "?"), str(i.get("device", ""))))
        return cls(path, eal, main, workers, devices, dp.get("mbufs"))

    def pci_devices(self):
        """PCI addresses among the interface devices and the EAL's `-a`/`--allow` options
        (devargs after a comma stripped)."""
        out = []
        for _, _, dev in self.devices:
            if dev and not dev.startswith(VDEV_PREFIXES):
                out.append(dev.split(",", 1)[0])
        for flag, value in self.eal_options():
            if flag in ("-a", "--allow", "-w", "--pci-whitelist") and value:
                out.append(value.split(",", 1)[0])
        seen = []
        for d in out:
            if d not in seen:
                seen.append(d)
        return seen

    def eal_options(self):
        """(flag, value) pairs of the EAL arguments; value None for a flag without one.
        `--flag=value` is split. A value is taken for the flags EAL gives one."""
        with_value = {"-a", "--allow", "-b", "--block", "-w", "--pci-whitelist", "-m",
                      "--socket-mem", "--socket-limit", "--huge-dir", "-n", "--file-prefix",
                      "--iova-mode", "--proc-type", "--log-level", "-d", "--vdev"}
        out = []
        args = list(self.eal)
        i = 0
        while i < len(args):
            a = args[i]
            if a.startswith("--") and "=" in a:
                k, v = a.split("=", 1)
                out.append((k, v))
            elif a in with_value and i + 1 < len(args):
                out.append((a, args[i + 1]))
                i += 1
            else:
                out.append((a, None))
            i += 1
        return out

    def eal_value(self, flag):
        for k, v in self.eal_options():
            if k == flag:
                return v
        return None

    def uses_hugepages(self):
        return all(k != "--no-huge" for k, _ in self.eal_options())

    def socket_mem_mb(self):
        """{node: MB} from --socket-mem, or None when it is not given."""
        v = self.eal_value("--socket-mem")
        if v is None:
            return None
        out = {}
        for node, mb in enumerate(v.split(",")):
            if mb.strip():
                out[node] = int(mb)
        return out

    def total_mem_mb(self):
        """-m (MB over all nodes), or None."""
        v = self.eal_value("-m")
        return int(v) if v is not None else None
