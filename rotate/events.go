package rotate

// Steps of rotate's, recover's and watch's progress events (the runner's
// steps, runner.StepRenew and the like, name the rest).
const (
	stepCheck   = "check"
	stepIssue   = "issue"
	stepDone    = "done"
	stepRevoke  = "revoke"
	stepMetrics = "metrics"
	stepExpired = "expired"
	stepRecover = "recover"
	stepWatch   = "watch"
	stepSpec    = "spec"
)
