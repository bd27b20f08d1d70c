package provisiontest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// FakeSSM keeps parameters in memory.
type FakeSSM struct {
	mu     sync.Mutex
	Params map[string]string
}

// NewSSM returns an empty fake.
func NewSSM() *FakeSSM { return &FakeSSM{Params: map[string]string{}} }

// GetParameter returns one parameter, or ParameterNotFound.
func (f *FakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.Params[aws.ToString(in.Name)]
	if !ok {
		return nil, APIError("ParameterNotFound")
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(v)}}, nil
}

// PutParameter sets a parameter.
func (f *FakeSSM) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Params[aws.ToString(in.Name)] = aws.ToString(in.Value)
	return &ssm.PutParameterOutput{}, nil
}

// GetParametersByPath returns the parameters directly under a path, in one page.
func (f *FakeSSM) GetParametersByPath(_ context.Context, in *ssm.GetParametersByPathInput, _ ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prefix := strings.TrimSuffix(aws.ToString(in.Path), "/") + "/"
	out := &ssm.GetParametersByPathOutput{}
	for _, name := range slices.Sorted(maps.Keys(f.Params)) {
		if rest, ok := strings.CutPrefix(name, prefix); ok && !strings.Contains(rest, "/") {
			out.Parameters = append(out.Parameters, ssmtypes.Parameter{Name: aws.String(name), Value: aws.String(f.Params[name])})
		}
	}
	return out, nil
}
