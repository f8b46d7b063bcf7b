#!/usr/bin/env bash
# Installs every host package ktstr needs: the kernel toolchain and source
# (`ktstr kernel build`), QEMU (booting test VMs), busybox (test
# initramfs) and the payload tools. Idempotent and non-interactive; runs
# apt-get directly as root, through sudo otherwise.
set -euo pipefail

PACKAGES=(
    # kernel build
    build-essential flex bison bc libelf-dev libssl-dev dwarves zlib1g-dev
    cpio xz-utils lz4 tar linux-source-6.12
    # sched_ext example schedulers (BPF)
    clang-19 llvm-19 lld-19
    # VMs and guests
    qemu-system-x86 busybox-static
    # payloads
    fio stress-ng
    # disks: mkfs for templates (packed into the guest) and the test's btrfs cache
    btrfs-progs xfsprogs e2fsprogs
    # tests: the interactive shell driven through a real terminal
    tmux
)

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "setup.sh: not root and no sudo; install as root: apt-get install ${PACKAGES[*]}" >&2
    exit 1
fi

# Skip apt entirely when everything is present (fast on cached CI machines).
missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup.sh: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup.sh: done"
