package api

// SetApplyTurnHook makes every apply call f once it has its turn, until
// the returned function restores the default.
func SetApplyTurnHook(f func()) (restore func()) {
	testHookApplyTurn = f
	return func() { testHookApplyTurn = func() {} }
}
