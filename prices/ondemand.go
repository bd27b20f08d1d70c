package prices

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"
)

// onDemandJSON is AWS's public on-demand price (USD per hour, Linux, shared
// tenancy) of the common families, by region and type, from AWS's price list.
//
//go:embed ondemand.json
var onDemandJSON []byte

type onDemandTable struct {
	Source  string                        `json:"source"`
	Regions map[string]map[string]float64 `json:"regions"`
}

var onDemand = sync.OnceValues(func() (onDemandTable, error) {
	var t onDemandTable
	return t, json.Unmarshal(onDemandJSON, &t)
})

// OnDemand is the hourly on-demand price of typ in region, or an error saying the
// table has none.
func OnDemand(region, typ string) (float64, error) {
	t, err := onDemand()
	if err != nil {
		return 0, fmt.Errorf("the built-in price table is unreadable: %w", err)
	}
	if p, ok := t.Regions[region][typ]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("the built-in table (%s) has no on-demand price for %s in %s", t.Source, typ, region)
}
