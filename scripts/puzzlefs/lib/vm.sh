# SPDX-License-Identifier: GPL-2.0
#
# Booting a kernel in QEMU: a busybox initramfs whose /init runs one job (demo or test), an
# optional ext4 data disk on virtio-mmio (QEMU's microvm machine: no PCI or ACPI needed), and a
# guest that ends itself (reboot -f with -no-reboot) under a hard host-side timeout.

# gen_init_cpio from the kernel tree makes the archive without root and with /dev/console.
vm_gen_init_cpio() {
	local bin=$PZ_CACHE/bin/gen_init_cpio
	if [ ! -x "$bin" ] || [ "$KTREE/usr/gen_init_cpio.c" -nt "$bin" ]; then
		mkdir -p "$(dirname "$bin")"
		cc -O2 -o "$bin" "$KTREE/usr/gen_init_cpio.c" || die "cannot build gen_init_cpio"
	fi
	printf '%s\n' "$bin"
}

# vm_initramfs OUT INIT [EXTRA_LIST_LINES]: busybox (static), the init script, /dev/console.
vm_initramfs() {
	local out=$1 init=$2 extra=${3:-} list
	local busybox
	busybox=$(command -v busybox) || die "busybox-static is not installed"
	list=$(mktemp)
	cat >"$list" <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /bin 0755 0 0
dir /sbin 0755 0 0
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 1777 0 0
dir /mnt 0755 0 0
dir /data 0755 0 0
dir /root 0700 0 0
file /bin/busybox $busybox 0755 0 0
slink /bin/sh busybox 0777 0 0
file /init $init 0755 0 0
LIST
	[ -n "$extra" ] && printf '%s\n' "$extra" >>"$list"
	"$(vm_gen_init_cpio)" "$list" | gzip -1 >"$out" || die "cannot build the initramfs"
	rm -f "$list"
}

# vm_cpio_tree SRC DEST: gen_init_cpio list lines that put the folder SRC at DEST in the
# initramfs (folders 0755, files 0644, owned by root).
vm_cpio_tree() {
	local src=$1 dest=$2 rel
	printf 'dir %s 0755 0 0\n' "$dest"
	(cd "$src" && find . -mindepth 1 | LC_ALL=C sort) | while read -r rel; do
		rel=${rel#./}
		if [ -d "$src/$rel" ]; then
			printf 'dir %s/%s 0755 0 0\n' "$dest" "$rel"
		else
			printf 'file %s/%s %s/%s 0644 0 0\n' "$dest" "$rel" "$src" "$rel"
		fi
	done
}

# Whether KVM can boot a kernel here. Nested KVM on the development machines fails in odd ways,
# so a quick smoke boot decides, once per host kernel; PUZZLEFS_ACCEL=tcg|kvm overrides.
vm_accel() {
	local kernel=$1 initrd=$2 stamp
	case ${PUZZLEFS_ACCEL:-auto} in
	tcg|kvm) echo "$PUZZLEFS_ACCEL"; return ;;
	esac
	if [ ! -w /dev/kvm ]; then echo tcg; return; fi
	# Once per host kernel: whether nested KVM works does not depend on the guest.
	stamp=$PZ_CACHE/stamps/kvm-$(uname -r)
	if [ ! -e "$stamp" ]; then
		if timeout 30 qemu-system-x86_64 -M microvm,acpi=off -accel kvm -cpu host -m 256 \
			-nographic -no-reboot -kernel "$kernel" -initrd "$initrd" \
			-append "console=ttyS0 panic=-1 pfs.mode=smoke" </dev/null 2>&1 |
			grep -q 'PFS-SMOKE-OK'; then
			echo kvm >"$stamp"
		else
			echo tcg >"$stamp"
		fi
	fi
	cat "$stamp"
}

# vm_run KERNEL INITRD CMDLINE LOG TIMEOUT_S [DISK]: boot, wait for the guest to end itself.
vm_run() {
	local kernel=$1 initrd=$2 cmdline=$3 logf=$4 tmo=$5 disk=${6:-} accel cpu=max
	local args=()
	accel=$(vm_accel "$kernel" "$initrd")
	[ "$accel" = kvm ] && cpu=host
	args=(-M microvm,acpi=off -accel "$accel" -cpu "$cpu" -smp 2 -m "${PUZZLEFS_VM_MEM:-2048}"
	      -nographic -no-reboot -kernel "$kernel" -initrd "$initrd")
	if [ -n "$disk" ]; then
		args+=(-drive "id=data,file=$disk,format=raw,if=none,cache=unsafe"
		       -device virtio-blk-device,drive=data)
	fi
	log "boot QEMU ($accel, timeout ${tmo}s; console log: $logf)"
	set +e
	timeout --foreground -k 5 "$tmo" qemu-system-x86_64 "${args[@]}" \
		-append "console=ttyS0 panic=-1 $cmdline" </dev/null >"$logf" 2>&1 &
	local qpid=$!
	# The guest ends itself with reboot -f; should a kernel not manage (the demo kernel has no
	# way to reset a microvm without ACPI), stop QEMU once the end marker is out.
	while kill -0 "$qpid" 2>/dev/null; do
		if grep -q '^PFS-END' "$logf"; then
			sleep 3
			kill "$qpid" 2>/dev/null
			break
		fi
		sleep 1
	done
	wait "$qpid"
	VM_RC=$?
	set -e
	tr -d '\r' <"$logf" >"$logf.tmp" && mv "$logf.tmp" "$logf"
	[ $VM_RC -eq 124 ] && log "QEMU timed out after ${tmo}s"
	return 0
}
