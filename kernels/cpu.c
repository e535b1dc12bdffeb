/* CPU feature detection.  x86: cpuid for what the CPU implements, xgetbv for what the OS saves
 * on context switches (a feature whose register state the OS does not enable must not be used).
 * AArch64: the kernel's hwcaps.  Built for the baseline target: no SIMD here. */
#include "kernels.h"

#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

static void detect_x86(struct kern_cpu *cpu)
{
	unsigned a, b, c, d;
	snprintf(cpu->arch, sizeof cpu->arch, "x86_64");
	if (!__get_cpuid(0, &a, &b, &c, &d))
		return;
	unsigned max_leaf = a;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	bool osxsave = c & (1u << 27), avx = c & (1u << 28);
	bool fma = c & (1u << 12), f16c = c & (1u << 29);
	uint64_t xcr0 = osxsave ? xgetbv0() : 0;
	bool os_ymm = (xcr0 & 0x6) == 0x6;   /* SSE + AVX state */
	bool os_zmm = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
	uint32_t f = 0;
	if (avx && os_ymm) {
		if (fma)
			f |= KERN_CPU_FMA;
		if (f16c)
			f |= KERN_CPU_F16C;
	}
	if (max_leaf >= 7) {
		__cpuid_count(7, 0, a, b, c, d);
		unsigned max_sub = a;
		bool avx2 = b & (1u << 5), f512 = b & (1u << 16), bw = b & (1u << 30), vl = b & (1u << 31);
		bool vnni512 = c & (1u << 11);
		if (avx && os_ymm && avx2)
			f |= KERN_CPU_AVX2;
		if ((f & KERN_CPU_AVX2) && os_zmm && f512 && bw && vl) {
			f |= KERN_CPU_AVX512;
			if (vnni512)
				f |= KERN_CPU_AVX512VNNI;
		}
		if (max_sub >= 1) {
			__cpuid_count(7, 1, a, b, c, d);
			if ((f & KERN_CPU_AVX2) && (a & (1u << 4)))
				f |= KERN_CPU_AVXVNNI;
		}
	}
	cpu->features = f;

	/* brand string, leaves 0x80000002..4 */
	if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
		unsigned r[12];
		for (unsigned i = 0; i < 3; i++)
			__get_cpuid(0x80000002 + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
		char brand[49];
		memcpy(brand, r, 48);
		brand[48] = 0;
		const char *p = brand;
		while (*p == ' ')
			p++;
		snprintf(cpu->model, sizeof cpu->model, "%s", p);
	}
}
#endif

#if defined(__aarch64__)
#include <sys/auxv.h>

#define KERN_HWCAP_ASIMD (1ul << 1)
#define KERN_HWCAP_ASIMDDP (1ul << 20)

static void detect_arm(struct kern_cpu *cpu)
{
	unsigned long hw = getauxval(AT_HWCAP);
	snprintf(cpu->arch, sizeof cpu->arch, "aarch64");
	if (hw & KERN_HWCAP_ASIMD) {
		cpu->features |= KERN_CPU_NEON;
		if (hw & KERN_HWCAP_ASIMDDP)
			cpu->features |= KERN_CPU_DOTPROD;
	}
}
#endif

void kern_cpu_detect(struct kern_cpu *cpu)
{
	memset(cpu, 0, sizeof *cpu);
#if defined(__x86_64__) || defined(__i386__)
	detect_x86(cpu);
#elif defined(__aarch64__)
	detect_arm(cpu);
#else
	snprintf(cpu->arch, sizeof cpu->arch, "other");
#endif
}

const char *kern_cpu_features_str(uint32_t features, char *buf, size_t size)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ KERN_CPU_AVX2, "avx2" },         { KERN_CPU_FMA, "fma" },
		{ KERN_CPU_F16C, "f16c" },         { KERN_CPU_AVX512, "avx512(f,bw,vl)" },
		{ KERN_CPU_AVX512VNNI, "avx512vnni" }, { KERN_CPU_AVXVNNI, "avxvnni" },
		{ KERN_CPU_NEON, "neon" },         { KERN_CPU_DOTPROD, "dotprod" },
	};
	size_t len = 0;
	if (size == 0)
		return buf;
	buf[0] = 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!(features & names[i].bit))
			continue;
		int n = snprintf(buf + len, size - len, "%s%s", len ? " " : "", names[i].name);
		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
	}
	if (len == 0)
		snprintf(buf, size, "none");
	return buf;
}
