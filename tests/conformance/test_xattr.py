"""Extended attributes: the vault format has none, so every xattr call on
umbrafs is ENOTSUP, on files, directories and symlinks, and changes
nothing. ext4 stores user.* attributes (and answers ENODATA for a missing
one); user.* on a symlink is EPERM on every Linux file system."""
import errno
import os
import stat

from conftest import check, fails


def test_set_get_list_remove_on_files_and_dirs(ctx):
    f = ctx.make("f", b"x")
    d = ctx.mkdir("d")
    unsupported = ctx.differs(umbrafs=errno.ENOTSUP, ext4=None)
    for path in (f, d):
        check(unsupported, os.setxattr, path, "user.test", b"value")
        check(ctx.differs(umbrafs=errno.ENOTSUP, ext4=None), os.getxattr, path, "user.test")
        check(unsupported, os.listxattr, path)
        check(unsupported, os.removexattr, path, "user.test")
        check(ctx.differs(umbrafs=errno.ENOTSUP, ext4=errno.ENODATA),
              os.getxattr, path, "user.missing")
    assert f.read_bytes() == b"x"


def test_xattr_call_flags(ctx):
    f = ctx.make("f")
    check(ctx.differs(umbrafs=errno.ENOTSUP, ext4=None),
          os.setxattr, f, "user.a", b"1", os.XATTR_CREATE)
    check(ctx.differs(umbrafs=errno.ENOTSUP, ext4=errno.EEXIST),
          os.setxattr, f, "user.a", b"1", os.XATTR_CREATE)


def test_posix_acls_are_not_supported(ctx):
    """The kernel reads ACLs for FUSE through getxattr; once umbrafs said
    ENOTSUP it answers "no ACL" (ENODATA) itself. Setting one is ENOTSUP."""
    f = ctx.make("f")
    check(ctx.differs(umbrafs=(errno.ENOTSUP, errno.ENODATA), ext4=errno.ENODATA),
          os.getxattr, f, "system.posix_acl_access")
    acl = bytes([2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 4, 0, 4, 0, 255, 255, 255, 255,
                 32, 0, 4, 0, 255, 255, 255, 255])  # user::rw- group::r-- other::r--
    check(ctx.differs(umbrafs=errno.ENOTSUP, ext4=None),
          os.setxattr, f, "system.posix_acl_access", acl)
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o644


def test_xattrs_of_symlinks(ctx):
    os.symlink("nowhere", ctx.dir / "l")
    fails(errno.EPERM, os.setxattr, ctx.dir / "l", "user.test", b"v", follow_symlinks=False)
    check(ctx.differs(umbrafs=errno.ENOTSUP, ext4=None),
          os.listxattr, ctx.dir / "l", follow_symlinks=False)


def test_xattr_errors_of_the_path(ctx):
    ctx.make("f")
    fails(errno.ENOENT, os.getxattr, ctx.dir / "missing", "user.test")
    fails(errno.ENOTDIR, os.listxattr, ctx.dir / "f" / "x")
