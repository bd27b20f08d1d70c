package settings

import (
	"reflect"
	"sort"
)

// Keys lists every settings key as a dotted path ("instance.subnet_id"), from the
// struct tags. The reference test uses it so docs/settings.md cannot fall behind.
func Keys() []string {
	var keys []string
	walk(reflect.TypeOf(Settings{}), "", &keys)
	sort.Strings(keys)
	return keys
}

func walk(t reflect.Type, prefix string, keys *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration{}) {
			walk(f.Type, key+".", keys)
			continue
		}
		*keys = append(*keys, key)
	}
}
