// Command fakegpu is a device plugin that advertises GPUs a node does not
// have, so that the local cluster's real kubelets schedule and admit the
// inference pods exactly as a GPU node's kubelet with NVIDIA's device plugin
// would: the pod asks for `nvidia.com/gpu`, the kubelet allocates device IDs
// through this plugin, and the container gets them in NVIDIA_VISIBLE_DEVICES.
// Nothing is mounted: the model-server double needs no device.
//
//	fakegpu -registry <kubelet root>/plugins_registry -dir <a folder of its own> -count 2
//
// It speaks the kubelet's device-plugin API v1beta1
// (k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1) and registers through the
// kubelet's plugin watcher (k8s.io/kubelet/pkg/apis/pluginregistration/v1),
// whose folder is under the kubelet's --root-dir. The older way, a Register
// call on /var/lib/kubelet/device-plugins/kubelet.sock, is a path fixed in the
// kubelet: several kubelets on one machine would share it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

func main() {
	registry := flag.String("registry", "/var/lib/kubelet/plugins_registry", "the kubelet's plugin-watcher folder (<kubelet --root-dir>/plugins_registry)")
	dir := flag.String("dir", "", "folder for the plugin's own socket (required)")
	resource := flag.String("resource", "nvidia.com/gpu", "extended resource name to advertise")
	count := flag.Int("count", 1, "how many devices to advertise")
	flag.Parse()
	if *count < 1 {
		log.Fatalf("fakegpu: -count %d is invalid: at least 1", *count)
	}
	if *dir == "" {
		log.Fatal("fakegpu: -dir is required: the folder for the plugin's socket")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *registry, *dir, *resource, *count); err != nil {
		log.Fatalf("fakegpu: %v", err)
	}
}

// plugin serves the DevicePlugin API for a fixed set of healthy devices.
type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	devices []*pluginapi.Device
}

func newPlugin(count int) *plugin {
	p := &plugin{}
	for i := range count {
		p.devices = append(p.devices, &pluginapi.Device{ID: fmt.Sprintf("fake-gpu-%d", i), Health: pluginapi.Healthy})
	}
	return p
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

// ListAndWatch sends the devices once; they never change.
func (p *plugin) ListAndWatch(_ *pluginapi.Empty, s pluginapi.DevicePlugin_ListAndWatchServer) error {
	if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: p.devices}); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

// Allocate hands the container its device IDs the way NVIDIA's plugin does,
// in NVIDIA_VISIBLE_DEVICES.
func (p *plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, c := range req.ContainerRequests {
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Envs: map[string]string{"NVIDIA_VISIBLE_DEVICES": strings.Join(c.DevicesIds, ",")},
		})
	}
	return resp, nil
}

func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

func (p *plugin) GetPreferredAllocation(context.Context, *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	return &pluginapi.PreferredAllocationResponse{}, nil
}

// registration answers the kubelet's plugin watcher: what the plugin is and
// where its DevicePlugin service listens.
type registration struct {
	registerapi.UnimplementedRegistrationServer
	resource, endpoint string
}

func (r *registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type: registerapi.DevicePlugin, Name: r.resource, Endpoint: r.endpoint,
		SupportedVersions: []string{pluginapi.Version},
	}, nil
}

func (r *registration) NotifyRegistrationStatus(_ context.Context, s *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if s.PluginRegistered {
		log.Printf("the kubelet registered %s (%s)", r.resource, r.endpoint)
	} else {
		log.Printf("the kubelet refused %s: %s", r.resource, s.Error)
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

// run serves the DevicePlugin API in dir and the registration in registry
// until ctx ends. The kubelet's plugin watcher finds the registration socket
// (also after a kubelet restart), asks GetInfo, and connects to the endpoint.
func run(ctx context.Context, registry, dir, resource string, count int) error {
	base := "fakegpu-" + strings.NewReplacer("/", "-", ".", "-").Replace(resource)
	endpoint := filepath.Join(dir, base+".sock")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if err := os.MkdirAll(registry, 0o750); err != nil {
		return err
	}
	plugin := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(plugin, newPlugin(count))
	if err := serve(plugin, endpoint); err != nil {
		return err
	}
	defer plugin.Stop()
	reg := grpc.NewServer()
	registerapi.RegisterRegistrationServer(reg, &registration{resource: resource, endpoint: endpoint})
	if err := serve(reg, filepath.Join(registry, "fakegpu.sock")); err != nil {
		return err
	}
	defer reg.Stop()
	log.Printf("offering %d x %s to the kubelet through %s", count, resource, registry)
	<-ctx.Done()
	return nil
}

func serve(s *grpc.Server, sock string) error {
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	go func() { _ = s.Serve(l) }()
	return nil
}
