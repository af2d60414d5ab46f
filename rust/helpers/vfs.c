// SPDX-License-Identifier: GPL-2.0

/*
 * Helpers for the Rust VFS abstractions in rust/kernel/fs/: the static
 * inline functions and macros of the VFS, page cache and mount API that a
 * read-only filesystem written in Rust calls.
 */

#include <linux/bvec.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fsverity.h>
#include <linux/highmem.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/seq_file.h>
#include <linux/uidgid.h>
#include <linux/xattr.h>

__rust_helper void *rust_helper_alloc_inode_sb(struct super_block *sb,
					       struct kmem_cache *cache,
					       gfp_t gfp)
{
	return alloc_inode_sb(sb, cache, gfp);
}

__rust_helper void rust_helper_i_uid_write(struct inode *inode, uid_t uid)
{
	i_uid_write(inode, uid);
}

__rust_helper void rust_helper_i_gid_write(struct inode *inode, gid_t gid)
{
	i_gid_write(inode, gid);
}

__rust_helper void rust_helper_inode_set_atime(struct inode *inode, time64_t sec,
					       long nsec)
{
	inode_set_atime(inode, sec, nsec);
}

__rust_helper void rust_helper_inode_set_mtime(struct inode *inode, time64_t sec,
					       long nsec)
{
	inode_set_mtime(inode, sec, nsec);
}

__rust_helper void rust_helper_inode_set_ctime(struct inode *inode, time64_t sec,
					       long nsec)
{
	inode_set_ctime(inode, sec, nsec);
}

__rust_helper void rust_helper_i_size_write(struct inode *inode, loff_t i_size)
{
	i_size_write(inode, i_size);
}

__rust_helper loff_t rust_helper_i_size_read(const struct inode *inode)
{
	return i_size_read(inode);
}

__rust_helper struct inode *rust_helper_file_inode(const struct file *f)
{
	return file_inode(f);
}

__rust_helper struct dentry *rust_helper_dget(struct dentry *dentry)
{
	return dget(dentry);
}

__rust_helper bool rust_helper_dir_emit(struct dir_context *ctx, const char *name,
					int namelen, u64 ino, unsigned int type)
{
	return dir_emit(ctx, name, namelen, ino, type);
}

__rust_helper bool rust_helper_dir_emit_dots(struct file *file,
					     struct dir_context *ctx)
{
	return dir_emit_dots(file, ctx);
}

__rust_helper void *rust_helper_kmap_local_folio(struct folio *folio,
						 size_t offset)
{
	return kmap_local_folio(folio, offset);
}

__rust_helper size_t rust_helper_folio_size(const struct folio *folio)
{
	return folio_size(folio);
}

__rust_helper loff_t rust_helper_folio_pos(const struct folio *folio)
{
	return folio_pos(folio);
}

__rust_helper struct inode *rust_helper_folio_inode(struct folio *folio)
{
	return folio_inode(folio);
}

__rust_helper void rust_helper_folio_zero_segment(struct folio *folio,
						  size_t start, size_t xend)
{
	folio_zero_segment(folio, start, xend);
}

__rust_helper struct folio *rust_helper_readahead_folio(struct readahead_control *ractl)
{
	return readahead_folio(ractl);
}

__rust_helper loff_t rust_helper_readahead_pos(const struct readahead_control *rac)
{
	return readahead_pos(rac);
}

__rust_helper size_t rust_helper_readahead_length(const struct readahead_control *rac)
{
	return readahead_length(rac);
}

__rust_helper void rust_helper_mapping_set_large_folios(struct address_space *mapping)
{
	mapping_set_large_folios(mapping);
}

__rust_helper unsigned int rust_helper_inode_state_read_once(struct inode *inode)
{
	return inode_state_read_once(inode);
}

__rust_helper const struct cred *rust_helper_override_creds(const struct cred *cred)
{
	return override_creds(cred);
}

__rust_helper const struct cred *rust_helper_revert_creds(const struct cred *cred)
{
	return revert_creds(cred);
}

__rust_helper void rust_helper_seq_show_option(struct seq_file *m,
					       const char *name,
					       const char *value)
{
	seq_show_option(m, name, value);
}

/*
 * Accessors for fields that sit in anonymous unions, whose Rust names depend
 * on the configuration.
 */
__rust_helper void rust_helper_inode_set_i_fop(struct inode *inode,
					       const struct file_operations *fops)
{
	inode->i_fop = fops;
}

__rust_helper void rust_helper_inode_set_i_link(struct inode *inode, char *link)
{
	inode->i_link = link;
}

__rust_helper const unsigned char *rust_helper_dentry_name(const struct dentry *dentry,
							   unsigned int *len)
{
	*len = dentry->d_name.len;
	return dentry->d_name.name;
}

__rust_helper void rust_helper_folio_flush_dcache(struct folio *folio)
{
	flush_dcache_folio(folio);
}

__rust_helper bool rust_helper_IS_DAX(const struct inode *inode)
{
	return IS_DAX(inode);
}

__rust_helper bool rust_helper_xattr_handler_can_list(const struct xattr_handler *handler,
						      struct dentry *dentry)
{
	return xattr_handler_can_list(handler, dentry);
}

__rust_helper void rust_helper_bvec_set_folio(struct bio_vec *bv, struct folio *folio,
					      size_t len, size_t offset)
{
	bvec_set_folio(bv, folio, len, offset);
}

__rust_helper bool rust_helper_folio_test_highmem(struct folio *folio)
{
	return folio_test_highmem(folio);
}

__rust_helper void *rust_helper_folio_address(const struct folio *folio)
{
	return folio_address(folio);
}

#ifndef CONFIG_FS_VERITY
__rust_helper int rust_helper_fsverity_get_digest(struct inode *inode,
						  u8 raw_digest[FS_VERITY_MAX_DIGEST_SIZE],
						  u8 *alg, enum hash_algo *halg)
{
	return fsverity_get_digest(inode, raw_digest, alg, halg);
}
#endif
