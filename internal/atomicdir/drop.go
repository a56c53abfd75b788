package atomicdir

// DropOld removes every version of dir but the one in effect. Update keeps
// the previous version until the next change so that a reader that
// resolved the old path can finish; when the previous version holds a
// secret that must leave the directory now (a retired CA key), the caller
// drops it explicitly. Each removal goes through the crash hook.
func DropOld(dir string) error {
	v, err := find(dir)
	if err != nil || v == nil {
		return err
	}
	cur, err := current(v.sd)
	if err != nil {
		return err
	}
	return prune(v.sd, cur)
}

// RemoveAll removes path and everything below it, through the crash hook:
// a store that is no longer needed (the next CA's, once it is the CA).
func RemoveAll(path string) error { return remove(path) }
