// Package intent is how a component says what it serves and what it needs,
// without knowing how the namespace is guarded. The platform turns the
// declarations of every workload into its ServiceAccount and its
// NetworkPolicies; adding a component adds declarations, not platform code.
package intent

// Workload is what one workload of the stack declares.
type Workload struct {
	// Name is the workload's name; its ServiceAccount and its policies are
	// named after it.
	Name string
	// Pods are the labels that select the workload's pods.
	Pods map[string]string
	// Serves are the ports others may reach its pods on, and who may.
	Serves []Ingress
	// Reaches are the destinations outside the cluster it connects to.
	Reaches []Egress
	// Calls are ports of the stack's own pods it connects to, beyond what
	// every pod of the stack may reach (Peers.Stack): the serving side must
	// admit it too, by its pod labels.
	Calls []Call
}

// Call lets the workload's pods connect to a port of other pods of the stack.
type Call struct {
	// Pods select the pods called.
	Pods map[string]string
	// Port is their container port, by number.
	Port int
	// EndPort, when above Port, makes it the range Port to EndPort.
	EndPort int
}

// Ingress lets peers reach a port of the workload's pods.
type Ingress struct {
	// Port is the container port, by number.
	Port int
	// EndPort, when above Port, makes it the range Port to EndPort
	// (a NetworkPolicy port's endPort).
	EndPort int
	// From says who may connect. Peers that name nobody allow nothing.
	From Peers
}

// Peers are the clients of a port.
type Peers struct {
	// Namespaces whose pods may connect.
	Namespaces []string
	// PodLabels select pods of the platform namespace that may connect.
	PodLabels map[string]string
	// Stack lets every pod of the stack connect (and out to this port).
	Stack bool
}

// Names reports whether the peers name anyone at all.
func (p Peers) Names() bool {
	return p.Stack || len(p.Namespaces) > 0 || len(p.PodLabels) > 0
}

// Egress lets the workload's pods connect to a network outside the cluster.
type Egress struct {
	// CIDR is the destination range, for example "10.40.0.0/16".
	CIDR string
	// Ports are TCP ports.
	Ports []int
	// Description says what lives there.
	Description string
}

// StackService is what a service of the stack itself declares: every pod of
// the stack may reach port, and the scrapers (namespaces) may scrape it there.
func StackService(port int, scrapers []string) []Ingress {
	return []Ingress{
		{Port: port, From: Peers{Stack: true}},
		{Port: port, From: Peers{Namespaces: scrapers}},
	}
}
