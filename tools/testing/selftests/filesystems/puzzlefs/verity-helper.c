// SPDX-License-Identifier: GPL-2.0
/*
 * pfs-verity: a tiny static helper for the PuzzleFS fs-verity tests in the
 * guest, where busybox has no fs-verity or FIEMAP applet.
 *
 *   pfs-verity enable FILE...   enable fs-verity (SHA-256, 4 KiB blocks, no
 *                               salt: what `puzzlefs enable-fs-verity` uses)
 *   pfs-verity measure FILE     print the fs-verity digest (hex), or "none"
 *   pfs-verity offset FILE      print "BYTE_OFFSET LENGTH" of the file's first
 *                               extent on its block device (FIEMAP)
 *
 * Exit status 0 on success, 1 on failure (with the errno on stderr).
 *
 * extras.sh builds it statically (cc -static -O2).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/fsverity.h>

static int fail(const char *what, const char *file)
{
	fprintf(stderr, "pfs-verity: %s %s: %s (errno %d)\n", what, file,
		strerror(errno), errno);
	return 1;
}

static int enable(const char *file)
{
	struct fsverity_enable_arg arg;
	int fd, rc = 0;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("open", file);
	memset(&arg, 0, sizeof(arg));
	arg.version = 1;
	arg.hash_algorithm = FS_VERITY_HASH_ALG_SHA256;
	arg.block_size = 4096;
	if (ioctl(fd, FS_IOC_ENABLE_VERITY, &arg) != 0)
		rc = fail("enable", file);
	close(fd);
	return rc;
}

static int measure(const char *file)
{
	struct {
		struct fsverity_digest d;
		unsigned char buf[64];
	} m;
	int fd, rc = 0;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("open", file);
	memset(&m, 0, sizeof(m));
	m.d.digest_size = sizeof(m.buf);
	if (ioctl(fd, FS_IOC_MEASURE_VERITY, &m) != 0) {
		if (errno == ENODATA)
			printf("none\n");
		else
			rc = fail("measure", file);
	} else {
		for (unsigned int i = 0; i < m.d.digest_size; i++)
			printf("%02x", m.d.digest[i]);
		printf("\n");
	}
	close(fd);
	return rc;
}

static int offset(const char *file)
{
	struct {
		struct fiemap f;
		struct fiemap_extent e[1];
	} m;
	const unsigned int bad = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_ENCODED |
				 FIEMAP_EXTENT_DATA_INLINE |
				 FIEMAP_EXTENT_NOT_ALIGNED |
				 FIEMAP_EXTENT_DELALLOC;
	int fd, rc = 0;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("open", file);
	memset(&m, 0, sizeof(m));
	m.f.fm_start = 0;
	m.f.fm_length = 1;
	m.f.fm_flags = FIEMAP_FLAG_SYNC;
	m.f.fm_extent_count = 1;
	if (ioctl(fd, FS_IOC_FIEMAP, &m.f) != 0) {
		rc = fail("fiemap", file);
	} else if (m.f.fm_mapped_extents != 1 || m.e[0].fe_logical != 0 ||
		   (m.e[0].fe_flags & bad)) {
		fprintf(stderr,
			"pfs-verity: %s: no plain extent at byte 0 (%u extents, flags %#x)\n",
			file, m.f.fm_mapped_extents, m.e[0].fe_flags);
		rc = 1;
	} else {
		printf("%llu %llu\n", (unsigned long long)m.e[0].fe_physical,
		       (unsigned long long)m.e[0].fe_length);
	}
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc >= 3 && !strcmp(argv[1], "enable")) {
		for (int i = 2; i < argc; i++)
			rc |= enable(argv[i]);
		return rc;
	}
	if (argc == 3 && !strcmp(argv[1], "measure"))
		return measure(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "offset"))
		return offset(argv[2]);
	fprintf(stderr,
		"usage: pfs-verity enable FILE... | measure FILE | offset FILE\n");
	return 2;
}
