package prices

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-executor/ec2-executor/statefile"
)

// SpotAPI is the one EC2 call spot prices need.
type SpotAPI interface {
	DescribeSpotPriceHistory(ctx context.Context, in *ec2.DescribeSpotPriceHistoryInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error)
}

var _ SpotAPI = (*ec2.Client)(nil)

// spotTTL is how long a spot price is reused: it moves slowly, and one call per type
// and zone an hour keeps a thousand jobs' cleanups from asking EC2 each.
const spotTTL = time.Hour

// Book prices workers: spot prices through API, cached in Dir (shared by every
// process of the manager), on-demand prices from the built-in table.
type Book struct {
	API SpotAPI
	Dir string
	Now func() time.Time
	mu  sync.Mutex
	mem map[string]cachedSpot // what this process read or fetched: a long-lived pool reads the file once per key an hour
	// table is the manager's own on-demand table (prices update) as of tableMod.
	table    onDemandTable
	tableMod time.Time
}

type cachedSpot struct {
	Price float64   `json:"price"`
	At    time.Time `json:"at"`
}

// Hourly is the hourly price of a worker of typ in zone (region, when zone does not
// name it), spot or on-demand, and where it came from.
func (b *Book) Hourly(ctx context.Context, region, zone, typ string, spot bool) (float64, string, error) {
	if !spot {
		return b.onDemand(regionOf(zone, region), typ)
	}
	if zone == "" {
		return 0, "", fmt.Errorf("the worker's availability zone is not known, so neither is its spot price")
	}
	p, err := b.spot(ctx, zone, typ)
	return p, "EC2 spot price history", err
}

// onDemand reads the manager's table (`prices update`) first, then the built-in one.
func (b *Book) onDemand(region, typ string) (float64, string, error) {
	if t := b.managerTable(); t.Regions[region][typ] > 0 {
		return t.Regions[region][typ], t.Source, nil
	}
	p, err := OnDemand(region, typ)
	return p, "on-demand price list", err
}

// managerTable is the table `prices update` wrote, read again only when it changed.
func (b *Book) managerTable() onDemandTable {
	b.mu.Lock()
	defer b.mu.Unlock()
	fi, err := os.Stat(tablePath(b.Dir))
	if err != nil {
		return onDemandTable{}
	}
	if !fi.ModTime().Equal(b.tableMod) {
		if t, err := readTable(tablePath(b.Dir)); err == nil {
			b.table, b.tableMod = t, fi.ModTime()
		}
	}
	return b.table
}

// regionOf is zone's region ("eu-west-1a" → "eu-west-1"), else region.
func regionOf(zone, region string) string {
	if n := len(zone); n > 1 && zone[n-1] >= 'a' && zone[n-1] <= 'z' && strings.Count(zone, "-") == 2 {
		return zone[:n-1]
	}
	return region
}

func (b *Book) spot(ctx context.Context, zone, typ string) (float64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := typ + "@" + zone
	if c, ok := b.mem[key]; ok && b.Now().Sub(c.At) < spotTTL {
		return c.Price, nil
	}
	path := filepath.Join(b.Dir, "spot-prices.json")
	cache := map[string]cachedSpot{}
	if data, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(data, &cache) // a damaged cache is refilled
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("reading the spot price cache: %w", err)
	}
	b.mem = cache
	if c, ok := cache[key]; ok && b.Now().Sub(c.At) < spotTTL {
		return c.Price, nil
	}
	p, err := latestSpot(ctx, b.API, zone, typ)
	if err != nil {
		return 0, err
	}
	cache[key] = cachedSpot{Price: p, At: b.Now()}
	return p, statefile.Write(path, cache)
}

// latestSpot asks EC2 for the newest Linux spot price of typ in zone: one call.
func latestSpot(ctx context.Context, api SpotAPI, zone, typ string) (float64, error) {
	out, err := api.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes:       []types.InstanceType{types.InstanceType(typ)},
		AvailabilityZone:    aws.String(zone),
		ProductDescriptions: []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"},
		Filters:             []types.Filter{{Name: aws.String("availability-zone"), Values: []string{zone}}},
	})
	if err != nil {
		return 0, fmt.Errorf("reading the spot price of %s in %s: %w", typ, zone, err)
	}
	var best *types.SpotPrice
	for i, sp := range out.SpotPriceHistory {
		if aws.ToString(sp.AvailabilityZone) != zone || !strings.HasPrefix(string(sp.ProductDescription), "Linux/UNIX") {
			continue
		}
		if best == nil || aws.ToTime(sp.Timestamp).After(aws.ToTime(best.Timestamp)) {
			best = &out.SpotPriceHistory[i]
		}
	}
	if best == nil {
		return 0, fmt.Errorf("EC2 has no spot price history for %s in %s", typ, zone)
	}
	p, err := strconv.ParseFloat(aws.ToString(best.SpotPrice), 64)
	if err != nil {
		return 0, fmt.Errorf("EC2's spot price of %s in %s is not a number: %q", typ, zone, aws.ToString(best.SpotPrice))
	}
	return p, nil
}
