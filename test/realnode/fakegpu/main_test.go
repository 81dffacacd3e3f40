package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// The plugin offers itself in the kubelet's plugin-watcher folder as a
// device plugin of v1beta1, advertises its devices as healthy and hands a
// container its device IDs the way NVIDIA's plugin does: what the kubelet's
// plugin watcher and device manager do with it, step by step.
func TestRegistersAdvertisesAndAllocates(t *testing.T) {
	dir, err := os.MkdirTemp("", "fakegpu")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	registry := filepath.Join(dir, "plugins_registry")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = run(ctx, registry, filepath.Join(dir, "plugin"), "nvidia.com/gpu", 2) }()

	var sock string
	require.Eventually(t, func() bool {
		socks, _ := filepath.Glob(filepath.Join(registry, "*.sock"))
		if len(socks) == 1 {
			sock = socks[0]
		}
		return sock != ""
	}, 10*time.Second, 50*time.Millisecond, "a registration socket in the plugin watcher's folder")
	regConn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer regConn.Close()
	info, err := registerapi.NewRegistrationClient(regConn).GetInfo(ctx, &registerapi.InfoRequest{})
	require.NoError(t, err)
	assert.Equal(t, registerapi.DevicePlugin, info.Type)
	assert.Equal(t, "nvidia.com/gpu", info.Name)
	assert.Equal(t, []string{pluginapi.Version}, info.SupportedVersions)

	conn, err := grpc.NewClient("unix://"+info.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	plugin := pluginapi.NewDevicePluginClient(conn)
	stream, err := plugin.ListAndWatch(ctx, &pluginapi.Empty{})
	require.NoError(t, err)
	list, err := stream.Recv()
	require.NoError(t, err)
	require.Len(t, list.Devices, 2)
	for _, d := range list.Devices {
		assert.Equal(t, pluginapi.Healthy, d.Health)
	}
	resp, err := plugin.Allocate(ctx, &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{list.Devices[0].ID, list.Devices[1].ID}},
	}})
	require.NoError(t, err)
	assert.Equal(t, list.Devices[0].ID+","+list.Devices[1].ID, resp.ContainerResponses[0].Envs["NVIDIA_VISIBLE_DEVICES"])
}
