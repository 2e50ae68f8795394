#!/usr/bin/env bash
# Installs a CPU Vulkan driver (Mesa lavapipe) for ManiSkill3 / SAPIEN on machines without a GPU.
#
#   bash scripts/setup_vulkan.sh            # needs root (or sudo) for `apt-get install libvulkan1`
#
# Debian bookworm's own Mesa 22 lavapipe fails under SAPIEN 3 ("failed to find a rendering device"),
# so this script:
#   1. installs the Vulkan loader `libvulkan1` system-wide with apt (the only system change);
#   2. downloads `mesa-vulkan-drivers` 25.0.7 (TORCHRL_NEWT_MESA_VERSION) from Debian's bookworm-backports suite through a
#      *private* apt configuration (the system's sources and package lists are left untouched);
#   3. unpacks it with `dpkg -x` into a private folder (default ~/.local/share/torchrl_newt/vulkan,
#      override with TORCHRL_NEWT_VULKAN_DIR) and writes `lvp_icd.json` there with an absolute
#      library path.
#
# torchrl_newt sets VK_ICD_FILENAMES=<folder>/lvp_icd.json automatically (before importing SAPIEN)
# when that file exists and no NVIDIA driver is present; elsewhere export it yourself:
#   export VK_ICD_FILENAMES=~/.local/share/torchrl_newt/vulkan/lvp_icd.json
# The script is idempotent: re-running it skips the download when the driver is already unpacked.
set -euo pipefail

VK_DIR=${TORCHRL_NEWT_VULKAN_DIR:-${HOME}/.local/share/torchrl_newt/vulkan}
SUITE=${TORCHRL_NEWT_VULKAN_SUITE:-bookworm-backports}
MIRROR=${TORCHRL_NEWT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# the version tested with SAPIEN 3.0.3 / ManiSkill 3.0.1; falls back to the suite's latest if gone
MESA_VERSION=${TORCHRL_NEWT_MESA_VERSION:-25.0.7-2~bpo12+1}
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

log() { echo "[setup_vulkan] $*" >&2; }

# 1. the Vulkan loader
if ! ldconfig -p 2>/dev/null | grep -q "libvulkan.so.1"; then
    log "installing libvulkan1 with apt"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libvulkan1
else
    log "libvulkan1 already installed"
fi

LVP_SO="${VK_DIR}/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"
if [ ! -f "${LVP_SO}" ]; then
    # 2. download mesa-vulkan-drivers from backports with a private apt state
    WORK=$(mktemp -d)
    trap 'rm -rf "${WORK}"' EXIT
    mkdir -p "${WORK}/lists/partial" "${WORK}/cache/archives/partial"
    echo "deb ${MIRROR} ${SUITE} main" >"${WORK}/sources.list"
    APT_OPTS=(-o "Dir::Etc::SourceList=${WORK}/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=${WORK}/lists" -o "Dir::Cache=${WORK}/cache"
              -o "APT::Sandbox::User=root")
    log "fetching the ${SUITE} package index (private apt state in ${WORK})"
    apt-get "${APT_OPTS[@]}" update -qq
    if ! (cd "${WORK}" && apt-get "${APT_OPTS[@]}" download "mesa-vulkan-drivers=${MESA_VERSION}"); then
        log "mesa-vulkan-drivers ${MESA_VERSION} not in ${SUITE}; taking the latest there (untested)"
        (cd "${WORK}" && apt-get "${APT_OPTS[@]}" download mesa-vulkan-drivers)
    fi
    DEB=$(ls "${WORK}"/mesa-vulkan-drivers_*.deb)
    log "unpacking $(basename "${DEB}") into ${VK_DIR}/root"
    mkdir -p "${VK_DIR}/root"
    dpkg -x "${DEB}" "${VK_DIR}/root"
    basename "${DEB}" >"${VK_DIR}/VERSION"
else
    log "driver already unpacked in ${VK_DIR}"
fi

MISSING=$(ldd "${LVP_SO}" | grep "not found" || true)
if [ -n "${MISSING}" ]; then
    log "libvulkan_lvp.so has unresolved libraries:"
    echo "${MISSING}" >&2
    exit 1
fi

# 3. the ICD manifest, with an absolute library path
cat >"${VK_DIR}/lvp_icd.json" <<EOF
{
    "file_format_version": "1.0.0",
    "ICD": {
        "library_path": "${LVP_SO}",
        "api_version": "1.3.0"
    }
}
EOF
log "wrote ${VK_DIR}/lvp_icd.json"
echo "export VK_ICD_FILENAMES=${VK_DIR}/lvp_icd.json"
