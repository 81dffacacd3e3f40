package stackfile_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/stackfile"
)

// What `pulumi stack init` and `pulumi config set` write must read back as the
// engine would hand it to the program.
func TestStackFilesAsPulumiWritesThem(t *testing.T) {
	cases := []struct {
		name, text string
		want       map[string]string
		secret     []string
	}{{
		name: "passphrase provider salt",
		text: "encryptionsalt: v1:abc:def\nconfig:\n  llm-platform:environment: dev\n",
		want: map[string]string{"llm-platform:environment": "dev"},
	}, {
		name: "cloud secrets provider",
		text: "secretsprovider: awskms://alias/x\nencryptedkey: AQID\nconfig:\n  llm-platform:environment: dev\n",
		want: map[string]string{"llm-platform:environment": "dev"},
	}, {
		name: "an ESC environment",
		text: "environment:\n  - team/dev\nconfig:\n  llm-platform:environment: dev\n",
		want: map[string]string{"llm-platform:environment": "dev"},
	}, {
		name: "a key without the project namespace is the project's",
		text: "config:\n  environment: prod\n",
		want: map[string]string{"llm-platform:environment": "prod"},
	}, {
		name: "YAML 1.2: yes and on are strings",
		text: "config:\n  llm-platform:environment: yes\n  llm-platform:cron: {schedule: on}\n",
		want: map[string]string{"llm-platform:environment": "yes", "llm-platform:cron": `{"schedule":"on"}`},
	}, {
		name: "large integers are not rounded",
		text: "config:\n  llm-platform:namespace: {quota: {pods: 9007199254740993}}\n",
		want: map[string]string{"llm-platform:namespace": `{"quota":{"pods":9007199254740993}}`},
	}, {
		name:   "a secure value",
		text:   "config:\n  llm-platform:modelRegistryToken:\n    secure: v1:abc\n",
		want:   map[string]string{"llm-platform:modelRegistryToken": "<secret llm-platform:modelRegistryToken>"},
		secret: []string{"llm-platform:modelRegistryToken"},
	}, {
		name:   "a secure value nested in an object (config set --path --secret)",
		text:   "config:\n  llm-platform:pipeline:\n    mountPath: /data\n    token:\n      secure: v1:abc\n",
		want:   map[string]string{"llm-platform:pipeline": `{"mountPath":"/data","token":"[secret]"}`},
		secret: []string{"llm-platform:pipeline"},
	}, {
		name: "other namespaces pass untouched",
		text: "config:\n  kubernetes:context: kind\n  llm-platform:environment: dev\n",
		want: map[string]string{"llm-platform:environment": "dev"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := stackfile.Parse("dev", "Pulumi.dev.yaml", []byte(tc.text))
			require.NoError(t, err)
			require.Len(t, s.Config, len(tc.want))
			for k, v := range tc.want {
				if json.Valid([]byte(v)) && v[0] == '{' {
					assert.JSONEq(t, v, s.Config[k], k)
				} else {
					assert.Equal(t, v, s.Config[k], k)
				}
			}
			assert.ElementsMatch(t, tc.secret, s.SecretKeys)
		})
	}
}

func TestStackFilesThatAreRefused(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"misspelled config", "confg:\n  llm-platform:environment: dev\n",
			`Pulumi.dev.yaml: not a valid stack file: unknown top-level key "confg"; a stack file holds only config, encryptedkey, encryptionsalt, environment, secretsprovider`},
		{"unknown project key", "config:\n  llm-platform:replcas: 3\n",
			"Pulumi.dev.yaml: llm-platform:replcas is not a key of this project; valid keys are "},
		{"not YAML", "config: [\n", "Pulumi.dev.yaml: not a valid stack file: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stackfile.Parse("dev", "Pulumi.dev.yaml", []byte(tc.text))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
