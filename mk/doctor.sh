#!/bin/sh
# Preflight: checks every prerequisite and prints one line per missing item with its fix.
# Run as root on Debian/Ubuntu it installs missing packages with apt-get, saying so
# (NO_INSTALL=1 turns that off).  Used by `make doctor` (full report) and by the preflight
# that `make` runs once (--quiet: only problems).  POSIX sh: it must run before anything is built.
#
# usage: mk/doctor.sh [--quiet] [--for build|test] [--cc CC] [--make-version V]
#                     [--model-dir DIR] [--quant Q] [--arch A]
set -u

quiet=0 purpose=build cc=${CC:-cc} make_version= model_dir= quant= arch=
while [ $# -gt 0 ]; do
	case $1 in
	--quiet) quiet=1 ;;
	--for) purpose=$2; shift ;;
	--cc) cc=$2; shift ;;
	--make-version) make_version=$2; shift ;;
	--model-dir) model_dir=$2; shift ;;
	--quant) quant=$2; shift ;;
	--arch) arch=$2; shift ;;
	*) echo "doctor: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

missing_pkgs=
problems=0
ok() { [ "$quiet" = 1 ] || printf '  ok       %s\n' "$1"; }
info() { [ "$quiet" = 1 ] || printf '  info     %s\n' "$1"; }
bad() { # what, fix, debian package (may be empty)
	printf '  MISSING  %s: %s\n' "$1" "$2"
	problems=$((problems + 1))
	[ -n "${3:-}" ] && missing_pkgs="$missing_pkgs $3"
}
have() { command -v "$1" >/dev/null 2>&1; }

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/bitmake-doctor.XXXXXX") || exit 1
trap 'rm -rf "$tmpdir"' EXIT INT TERM

# compiles a program including $1 and linking $2; succeeds if it builds
try_cc() {
	printf '#include <%s>\nint main(void){return 0;}\n' "$1" > "$tmpdir/t.c"
	"$cc" "$tmpdir/t.c" -o "$tmpdir/t" $2 >/dev/null 2>&1
}

[ "$quiet" = 1 ] || echo "bitmake doctor: checking prerequisites (for: $purpose)"

# ---- tools ----
if have "$cc"; then
	ver=$("$cc" --version 2>/dev/null | head -1)
	case $ver in
	*clang*)
		major=$(echo "$ver" | sed -n 's/.*clang version \([0-9]*\).*/\1/p')
		if [ -n "$major" ] && [ "$major" -lt 14 ]; then
			bad "C compiler ($cc, clang $major)" "clang 14 or newer is needed; install clang or pass CC=clang-NN" clang
		else ok "C compiler: $ver"; fi ;;
	*) ok "C compiler: $ver" ;;
	esac
	printf 'int main(void){return 0;}\n' > "$tmpdir/c.c"
	"$cc" -std=c11 "$tmpdir/c.c" -o "$tmpdir/c" >/dev/null 2>&1 ||
		bad "C compiler ($cc)" "cannot build a trivial C11 program; install libc6-dev" libc6-dev
else
	bad "C compiler ($cc)" "not found; install clang (or pass CC=gcc)" clang
fi
if [ -n "$make_version" ]; then
	case $make_version in
	3.*) bad "GNU make $make_version" "GNU make 4.0 or newer is needed" make ;;
	*) ok "GNU make $make_version" ;;
	esac
fi
have pkg-config && ok "pkg-config" || bad "pkg-config" "needed to locate libraries" pkg-config

# ---- libraries: header, link flags, Debian package ----
check_lib() { # name header libs package
	if try_cc "$2" "$3"; then ok "$1"; else bad "$1" "headers or library not found ($2, $3)" "$4"; fi
}
check_lib libcurl curl/curl.h -lcurl libcurl4-openssl-dev
check_lib libxxhash xxhash.h -lxxhash libxxhash-dev
check_lib jansson jansson.h -ljansson libjansson-dev
check_lib "OpenSSL (libcrypto)" openssl/evp.h -lcrypto libssl-dev
if [ "$purpose" = test ]; then
	check_lib criterion criterion/criterion.h -lcriterion libcriterion-dev
	check_lib libmicrohttpd microhttpd.h -lmicrohttpd libmicrohttpd-dev
	have xz && ok "xz (reference test data)" || bad "xz" "needed to unpack ../shared/testdata" xz-utils
	have qemu-aarch64 && ok "qemu-aarch64 (ARM kernel tests)" || bad "qemu-aarch64" "needed to run the NEON kernels in tests" qemu-user
	if have aarch64-linux-gnu-gcc && [ -e /usr/aarch64-linux-gnu/include/stdio.h ]; then
		ok "aarch64 cross toolchain"
	else
		bad "aarch64 cross toolchain" "needed to cross-compile the NEON kernels" "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
	fi
	have spm_encode && ok "sentencepiece (tokenizer tests)" || bad "spm_encode" "needed to check the tokenizer" sentencepiece
fi

# ---- machine ----
if [ -r /proc/cpuinfo ]; then
	flags=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo | cut -d: -f2)
	feats=
	for f in avx2 avx512f avx512_vnni avx_vnni asimd asimddp; do
		case " $flags " in *" $f "*) feats="$feats $f" ;; esac
	done
	info "CPU features:${feats:- none of avx2/avx512/neon}"
	case "$quant:$flags" in
	tl2:*avx2*|tl2:) ;;
	tl2:*) bad "CPU feature avx2" "QUANT=tl2 kernels need AVX2, which this CPU lacks; use QUANT=i2_s" ;;
	esac
fi
if [ -n "$model_dir" ]; then
	d=$model_dir
	while [ ! -d "$d" ]; do d=$(dirname "$d"); done
	free_kb=$(df -Pk "$d" | awk 'NR==2 {print $4}')
	info "free disk for $model_dir: $((free_kb / 1024)) MiB"
	if [ "${free_kb:-0}" -lt 1048576 ]; then
		bad "free disk" "less than 1 GiB free under $model_dir; even the synthetic models need room for their GGUF files"
	fi
fi

if [ "$problems" -eq 0 ]; then
	[ "$quiet" = 1 ] || echo "bitmake doctor: all prerequisites present"
	exit 0
fi
if [ -n "$missing_pkgs" ]; then
	if [ "$(id -u)" = 0 ] && have apt-get && [ "${NO_INSTALL:-0}" != 1 ]; then
		echo "bitmake doctor: installing missing Debian packages:$missing_pkgs"
		export DEBIAN_FRONTEND=noninteractive
		if apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing_pkgs >/dev/null; then
			echo "bitmake doctor: installed$missing_pkgs"
			exec "$0" --quiet --for "$purpose" --cc "$cc" ${make_version:+--make-version "$make_version"} ${quant:+--quant "$quant"}
		fi
		echo "bitmake doctor: apt-get failed; run it by hand: apt-get install -y$missing_pkgs" >&2
	else
		echo "bitmake doctor: to install what is missing, run: sudo apt-get install -y$missing_pkgs" >&2
	fi
fi
exit 1
