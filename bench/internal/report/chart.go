package report

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/reconciler/reconciler/bench/internal/stats"
)

const (
	panelW, panelH = 600, 380
	chartCols      = 2
	titleH         = 34
	// Inside a panel: room for the title and legend above, the axis
	// labels left and the group labels below.
	padTop, padLeft, padBottom, padRight = 58, 64, 40, 16
)

var (
	white   = color.RGBA{0xff, 0xff, 0xff, 0xff}
	ink     = color.RGBA{0x22, 0x22, 0x22, 0xff}
	grid    = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	palette = []color.RGBA{
		{0x1f, 0x77, 0xb4, 0xff}, // the agent: always first
		{0xff, 0x7f, 0x0e, 0xff},
		{0x2c, 0xa0, 0x2c, 0xff},
		{0xd6, 0x27, 0x28, 0xff},
		{0x94, 0x67, 0xbd, 0xff},
		{0x8c, 0x56, 0x4b, 0xff},
		{0xe3, 0x77, 0xc2, 0xff},
		{0x7f, 0x7f, 0x7f, 0xff},
		{0xbc, 0xbd, 0x22, 0xff},
		{0x17, 0xbe, 0xcf, 0xff},
	}
)

// panel is one scenario's bars on one y axis.
type panel struct {
	title string
	unit  string
	rows  []Row
}

// panels groups the rows by scenario, keeping in each the rows that share
// the first one's unit, so every panel has one honest y axis.
func panels(r *Results) []panel {
	var out []panel
	idx := map[string]int{}
	for _, row := range r.Rows {
		if row.Agent.Summary.N == 0 {
			continue
		}
		i, ok := idx[row.Scenario]
		if !ok {
			i = len(out)
			idx[row.Scenario] = i
			out = append(out, panel{title: row.Scenario, unit: row.Unit})
		}
		if out[i].unit == row.Unit {
			out[i].rows = append(out[i].rows, row)
		}
	}
	return out
}

// Chart draws grouped bars, the agent against each baseline, one panel per
// scenario, each bar the median with a whisker from min to max.
func Chart(r *Results, w io.Writer) error {
	ps := panels(r)
	rows := max(1, (len(ps)+chartCols-1)/chartCols)
	img := image.NewRGBA(image.Rect(0, 0, chartCols*panelW, titleH+rows*panelH))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	text(img, 12, 22, fmt.Sprintf("reconciler bench %s: median of repetitions, whiskers min-max; every baseline measured in the same run", r.RunID), ink)
	colors := map[string]color.RGBA{}
	for i, p := range ps {
		origin := image.Pt((i%chartCols)*panelW, titleH+(i/chartCols)*panelH)
		drawPanel(img, origin, p, colors)
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("encode chart: %w", err)
	}
	return nil
}

func colorOf(colors map[string]color.RGBA, name string) color.RGBA {
	if c, ok := colors[name]; ok {
		return c
	}
	c := palette[len(colors)%len(palette)]
	colors[name] = c
	return c
}

func drawPanel(img *image.RGBA, o image.Point, p panel, colors map[string]color.RGBA) {
	text(img, o.X+padLeft, o.Y+18, fmt.Sprintf("%s (%s)", p.title, p.unit), ink)
	plot := image.Rect(o.X+padLeft, o.Y+padTop, o.X+panelW-padRight, o.Y+panelH-padBottom)

	top := 0.0
	var names []string
	seen := map[string]bool{}
	for _, row := range p.rows {
		for _, s := range append([]Series{row.Agent}, row.Baselines...) {
			top = math.Max(top, s.Summary.Max)
			if !seen[s.Name] {
				seen[s.Name] = true
				names = append(names, s.Name)
			}
		}
	}
	step := niceStep(top)
	if step == 0 {
		return
	}
	yMax := math.Ceil(top*1.08/step) * step
	y := func(v float64) int { return plot.Max.Y - int(v/yMax*float64(plot.Dy())) }

	for v := 0.0; v <= yMax+step/2; v += step {
		py := y(v)
		fill(img, image.Rect(plot.Min.X, py, plot.Max.X, py+1), grid)
		label := stats.Format(v, "")
		text(img, plot.Min.X-8-7*len(label), py+4, label, ink)
	}
	fill(img, image.Rect(plot.Min.X, plot.Min.Y, plot.Min.X+1, plot.Max.Y), ink)
	fill(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1), ink)

	// Legend, in the order the series first appear.
	lx := o.X + padLeft
	for _, n := range names {
		c := colorOf(colors, n)
		fill(img, image.Rect(lx, o.Y+30, lx+10, o.Y+40), c)
		text(img, lx+14, o.Y+40, n, ink)
		lx += 14 + 7*len(n) + 16
	}

	groupW := plot.Dx() / max(1, len(p.rows))
	for g, row := range p.rows {
		series := append([]Series{row.Agent}, row.Baselines...)
		barW := min(60, (groupW-20)/len(series))
		x0 := plot.Min.X + g*groupW + (groupW-barW*len(series))/2
		for i, s := range series {
			if s.Summary.N == 0 {
				continue
			}
			bx := x0 + i*barW
			c := colorOf(colors, s.Name)
			fill(img, image.Rect(bx+2, y(s.Summary.Median), bx+barW-2, plot.Max.Y), c)
			// Whisker: min to max, with caps.
			mx := bx + barW/2
			fill(img, image.Rect(mx, y(s.Summary.Max), mx+1, y(s.Summary.Min)+1), ink)
			fill(img, image.Rect(mx-5, y(s.Summary.Max), mx+6, y(s.Summary.Max)+1), ink)
			fill(img, image.Rect(mx-5, y(s.Summary.Min), mx+6, y(s.Summary.Min)+1), ink)
			v := stats.Format(s.Summary.Median, "")
			text(img, mx-7*len(v)/2, y(s.Summary.Max)-4, v, ink)
		}
		label := row.Case
		if label == "" {
			label = row.Metric
		}
		text(img, plot.Min.X+g*groupW+(groupW-7*len(label))/2, plot.Max.Y+18, label, ink)
	}
}

// niceStep is a grid step of 1, 2 or 5 times a power of ten giving about
// five lines up to top.
func niceStep(top float64) float64 {
	if top <= 0 || math.IsNaN(top) || math.IsInf(top, 0) {
		return 0
	}
	raw := top / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r.Intersect(img.Bounds()), image.NewUniform(c), image.Point{}, draw.Src)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
