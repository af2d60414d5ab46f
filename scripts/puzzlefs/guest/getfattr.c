// SPDX-License-Identifier: GPL-2.0
/*
 * A minimal `getfattr -d -m -` for the busybox guests, which have no getfattr: prints every
 * extended attribute of each path as name="value", with non-printable bytes as \ooo.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

static char names[65536];
static unsigned char value[65536];

int main(int argc, char **argv)
{
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		ssize_t len = llistxattr(argv[i], names, sizeof(names));

		if (len < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			rc = 1;
			continue;
		}
		printf("# file: %s\n", argv[i]);
		for (char *n = names; n < names + len; n += strlen(n) + 1) {
			ssize_t vlen = lgetxattr(argv[i], n, value, sizeof(value));

			if (vlen < 0) {
				printf("%s: %s\n", n, strerror(errno));
				rc = 1;
				continue;
			}
			printf("%s=\"", n);
			for (ssize_t j = 0; j < vlen; j++) {
				if (isprint(value[j]) && value[j] != '"' && value[j] != '\\')
					putchar(value[j]);
				else
					printf("\\%03o", value[j]);
			}
			printf("\"\n");
		}
	}
	return rc;
}
