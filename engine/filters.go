package engine

import "github.com/docker/docker/api/types/filters"

func labelFilter(jobKey string) filters.Args {
	return filters.NewArgs(filters.Arg("label", LabelJob+"="+jobKey))
}
