# shellcheck shell=bash
# Shared helpers of the daxpool lab scripts (sourced, not run).

# shellcheck disable=SC2034 # used by the scripts that source this file
lab_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The cache lives outside the repository: kernels (keyed by version), apt state, runs.
lab_cache_default() {
	if [ -n "${DAXPOOL_LAB_CACHE:-}" ]; then
		printf '%s\n' "$DAXPOOL_LAB_CACHE"
	elif [ -w /var/cache ] || [ -w /var/cache/daxpool-lab ]; then
		printf '%s\n' /var/cache/daxpool-lab
	else
		printf '%s\n' "${XDG_CACHE_HOME:-$HOME/.cache}/daxpool-lab"
	fi
}
# shellcheck disable=SC2034
LAB_CACHE=$(lab_cache_default)

log() { printf 'lab: %s\n' "$*" >&2; }
die() {
	printf 'lab: ERROR: %s\n' "$*" >&2
	exit 1
}
need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			die "missing command '$c' (install the lab packages: scripts/install-deps.sh lab)"
	done
}
now_ms() { date +%s%3N; }
# Seconds with one decimal between two now_ms stamps.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# The kernel generations of the lab, oldest first (docs/LAB.md "Kernel generations").
# shellcheck disable=SC2034
LAB_GENERATIONS=(5.10 6.1 6.12 new)
# Normalises a kernel generation name: 5.10 | 6.1 | 6.12 | new.
lab_generation() {
	case "$1" in
	5.10 | 5.10.* | bullseye) echo 5.10 ;;
	6.1 | 6.1.* | bookworm | old) echo 6.1 ;;
	6.12 | 6.12.* | trixie) echo 6.12 ;;
	new | newest | latest | trixie-backports | backports) echo new ;;
	*) die "unknown kernel '$1' (use 5.10, 6.1, 6.12 or new)" ;;
	esac
}
