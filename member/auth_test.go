package member_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/member"
	"github.com/etcdpki/etcdpki/pki"
	"github.com/etcdpki/etcdpki/runner"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// TestMemberWithAuthOn adds a member and removes the leader of a cluster
// whose auth is on (as etcdpki auth apply leaves it): etcd allows member
// add, promote and remove and MoveLeader only to root, so each goes
// through the run's root client minted in memory, while the health gates
// and proofs keep the probe certificate, which etcd knows as no user.
// The removed node's user, made by hand here, is deleted with it.
func TestMemberWithAuthOn(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, etcdtest.Options{Name: "memberauth", FromEnv: true, Edit: func(f *etcdtest.SpecFile) {
		on := true
		f.Auth.Enabled = &on
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := runner.New(pki.New(c.Spec), runner.Config{}, nil).Etcd.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := etcdauth.Sync(ctx, admin, c.Spec); err != nil {
		t.Fatal(err)
	}

	m4 := c.AddNode(t, nil)
	var out bytes.Buffer
	if _, err := member.Add(ctx, pki.New(c.Spec), member.Options{Name: m4.Name, Out: &out}); err != nil {
		t.Fatalf("member add with auth on: %v\n%s", err, out.String())
	}
	if voters, learners := memberList(t, c); len(voters) != 4 || len(learners) != 0 {
		t.Errorf("after the add: voters %v learners %v", voters, learners)
	}

	leader := leaderName(t, c)
	if _, err := admin.UserAddWithOptions(ctx, leader, "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
		t.Fatal(err)
	}
	testRemove(t, c, leader, false)
	st, err := etcdauth.Live(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Users[leader]; ok {
		t.Errorf("the removed node's user %s is still there", leader)
	}
	if !st.Enabled {
		t.Error("auth went off")
	}
}
